"""Sentences as spans of the original text, so every quote stays verbatim.

A :class:`Span` keeps offsets into the source and the exact source slice; code
that quotes evidence uses ``span.text`` (always a substring of the source), code
that shows text to people uses ``span.clean`` (whitespace collapsed).
Hand-written because sentence splitters (nltk, pysbd) normalise or lose offsets
on the wrapped, half-punctuated lines of real emails, and pull in large models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from itertools import pairwise

__all__ = ["Span", "normalize", "sentence_containing", "sentences"]

_END = re.compile(r"[.!?…]+[\"'»”)\]]*(?=\s|$)")
_ABBREV = frozenset(
    "mr mrs ms dr prof no nr nos vs etc approx inc ltd co corp jr sr st e.g i.e eg ie fig ref tel "
    "т.е т.к т.д т.п г гг ул д руб коп тыс млн млрд стр им см др пр".split()
)
_BULLET = re.compile(r"\s*(?:[-*•–]|\d{1,2}[.)])\s")


@dataclass(frozen=True, slots=True)
class Span:
    """``text == source[start:end]``, stripped of surrounding whitespace."""

    start: int
    end: int
    text: str

    @property
    def clean(self) -> str:
        return normalize(self.text)


def normalize(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"([\w.]+)$", text[:dot])
    if word is None:
        return False
    token = word.group(1).lower().rstrip(".")
    return token in _ABBREV or (len(token) == 1 and token.isalpha())


def _boundaries(text: str, start: int, end: int) -> Iterable[int]:
    for m in _END.finditer(text, start, end):
        rest = text[m.end() : end].lstrip()
        if rest and rest[0].islower():
            continue
        if m.group().startswith(".") and len(m.group()) == 1 and _is_abbreviation(text, m.start()):
            continue
        yield m.end()
    for m in re.finditer(r"\n", text[start:end]):
        nl = start + m.start()
        line_start = text.rfind("\n", start, nl) + 1
        line = text[max(line_start, start) : nl].rstrip()
        following = text[nl + 1 : end]
        if (
            not line
            or line.endswith((":", ",", ";", ".", "!", "?", "…"))
            or len(line) < 40
            or _BULLET.match(following)
            or following.startswith(("\n", "\r\n"))
        ):
            yield nl


def sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """The sentences of ``text[start:end]`` as stripped, non-empty spans in order."""
    end = len(text) if end is None else end
    cuts = sorted({start, end, *_boundaries(text, start, end)})
    spans = []
    for a, b in pairwise(cuts):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        stripped = piece.strip()
        if any(ch.isalnum() for ch in stripped):
            spans.append(Span(a + lead, a + lead + len(stripped), stripped))
    return spans


def sentence_containing(spans: list[Span], position: int) -> Span | None:
    """The span that covers ``position`` (an offset into the same source)."""
    for span in spans:
        if span.start <= position < span.end:
            return span
    return None


_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")


def email_domain(address: str) -> str:
    """The domain of an email address, lower-cased (``"Ann Lee <Ann@Acme.COM>"`` -> ``"acme.com"``); empty when the
    text holds no address with a plain domain, so nothing else of it (a name, a phone number) passes."""
    _, addr = parseaddr(address.strip())
    local, at, domain = addr.rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    return domain if at and local and _DOMAIN.fullmatch(domain) else ""
