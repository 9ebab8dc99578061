"""Language of a text from its script and its stopwords: ISO 639-1 code or ``und``.

Non-Latin scripts decide directly (Cyrillic: ``ru``, or ``uk`` with Ukrainian
letters; Greek, Arabic, Hebrew, CJK); Latin text is told apart by counting
stopwords of en, de, fr, es, it, pt. Hand-written because the detectors on PyPI
either ship large profiles (lingua) or are unreliable on short texts without a
fallback (langdetect); a support ticket needs these few languages, quickly.
"""

from __future__ import annotations

import math
import re
import unicodedata

__all__ = ["detect_language"]

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are to of my i you it not have has for with this that was can please be on in what how do does "
        "did would could should will an at from your our we me am been there they".split()
    ),
    "de": frozenset(
        "der die das und ist nicht ich sie mit ein eine zu mein meine bitte auf für es wir haben kann wie was den dem "
        "ihr sind auch noch mir mich wurde keine kein nach bei".split()
    ),
    "fr": frozenset(
        "le la les et est je ne pas vous un une des du mon ma mes pour avec il nous sur que qui ce au aux sont "
        "mais votre été ai merci".split()
    ),
    "es": frozenset(
        "el la los las y es no yo un una del mi mis por para con que se en su está cómo qué pero tengo "
        "muy sus al le gracias hola".split()
    ),
    "it": frozenset(
        "il lo gli e è non io di del mio mia per con che sono ho come questo della nel grazie ciao anche".split()
    ),
    "pt": frozenset(
        "o os e é não eu um uma do da meu minha para com que em está como por foi obrigado olá também".split()
    ),
}
_MARKS: dict[str, str] = {"de": "äöüß", "fr": "çèêëàâîôûœ", "es": "ñ¿¡", "pt": "ãõ", "it": "ìò"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("CYRILLIC", "ru"),
    ("GREEK", "el"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CJK", "zh"),
    ("THAI", "th"),
    ("DEVANAGARI", "hi"),
    ("LATIN", "latin"),
)


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    for prefix, code in _SCRIPTS:
        if name.startswith(prefix):
            return code
    return None


def detect_language(text: str) -> tuple[str, float]:
    """``(code, confidence)``; ``("und", 0.0)`` when nothing tells."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha() and (code := _script(ch)) is not None:
            counts[code] = counts.get(code, 0) + 1
    if not counts:
        return "und", 0.0
    letters = sum(counts.values())
    script, n = max(counts.items(), key=lambda kv: kv[1])
    share = n / letters
    if script == "ru":
        if any(ch in "іїєґІЇЄҐ" for ch in text):
            script = "uk"
        return script, round(min(0.99, share), 3)
    if script != "latin":
        if script == "zh" and "ja" in counts:
            script = "ja"
        return script, round(min(0.99, share), 3)
    lowered = text.lower()
    scores = {lang: 0.0 for lang in _STOPWORDS}
    for word in _WORD.findall(lowered):
        for lang, words in _STOPWORDS.items():
            if word in words:
                scores[lang] += 1.0
    for lang, marks in _MARKS.items():
        scores[lang] += 0.5 * sum(lowered.count(m) for m in marks)
    total = sum(scores.values())
    if total == 0:
        return "und", 0.0
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    evidence = 1.0 - math.exp(-best / 2.0)
    return lang, round(min(0.99, share * (best / total) * evidence), 3)
