"""PII redaction: replace personal data with typed placeholders before text leaves the process.

``Redactor().redact(payload)`` walks every string in a payload (nested dicts,
lists and tuples; keys are left alone) and replaces what it detects with
placeholders such as ``<EMAIL_1>``, ``<PHONE_2>``, ``<CARD_1>``. The same value
gets the same placeholder everywhere in one input, so the model can still tell
"the same address twice" from "two addresses", and ``Redaction.restore`` can put
the originals back into output fields that need them. "The same" means spelled
the same: ``A@Example.com`` and ``a@example.com`` get two placeholders, so each
is restored exactly as the text wrote it (a restored quote is a verbatim part of
the input, which grounding checks rely on).

Detected, in this order of precedence: email addresses, IBANs (ISO 13616
mod-97 checked), payment card numbers (13–19 digits, Luhn-checked), US social
security numbers, IPv4 addresses, phone numbers (international ``+``/``00``
prefixes, or national numbers written with separators, or 10+ digits). Bare
digit runs of 7–9 digits without separators (order numbers) are left alone. Person names are not detected:
that needs a NER model (Presidio + spaCy), too heavy for every consumer.

Hand-written rather than Presidio because the detectors needed here are regular
expressions plus checksums (what Presidio's own pattern recognizers do), and
Presidio would pull spaCy and a language model into every service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Detector", "Redaction", "Redactor", "DEFAULT_DETECTORS", "luhn_ok", "iban_ok"]


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN (letters and digits, no spaces)."""
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def _phone_ok(s: str) -> bool:
    digits = _digits(s)
    if not 7 <= len(digits) <= 15 or _DATE.match(s.strip()):
        return False
    stripped = s.strip()
    if stripped.startswith(("+", "00")):
        return True
    has_separator = bool(re.search(r"[\s().-]", stripped))
    return has_separator or len(digits) >= 10


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of PII: a pattern, an optional check on each match, a normaliser for stable placeholders."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] = lambda s: True
    shrink: bool = False
    """On a failed check, retry shorter prefixes cut at spaces/dashes (for greedy grouped numbers)."""


DEFAULT_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "EMAIL",
        re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])"),
    ),
    Detector(
        "IBAN",
        re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"),
        check=lambda s: iban_ok(s.replace(" ", "").upper()),
        shrink=True,
    ),
    Detector(
        "CARD",
        re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
        check=lambda s: 13 <= len(_digits(s)) <= 19 and luhn_ok(_digits(s)),
    ),
    Detector(
        "SSN",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
    ),
    Detector(
        "IP",
        re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
    ),
    Detector(
        "PHONE",
        re.compile(
            r"(?<![\w+])"
            r"(?:"
            r"(?:\+|00)\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,5}"
            r"|"
            r"\(?\d{2,5}\)?[\s.-]?\d{2,4}(?:[\s.-]?\d{2,4}){1,3}"
            r")"
            r"(?![\w])"
        ),
        check=_phone_ok,
    ),
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """A redacted payload and what it takes to undo it (never log ``originals``)."""

    payload: Any
    originals: Mapping[str, str] = field(default_factory=dict, repr=False)
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def found(self) -> int:
        """How many distinct values were redacted."""
        return len(self.originals)

    def restore(self, text: str) -> str:
        """Put the original values back in place of this input's placeholders."""
        if not self.originals:
            return text
        return _PLACEHOLDER.sub(lambda m: self.originals.get(m.group(0), m.group(0)), text)


_PLACEHOLDER = re.compile(r"<[A-Z]+_\d+>")


class _State:
    __slots__ = ("by_value", "originals", "counts")

    def __init__(self) -> None:
        self.by_value: dict[tuple[str, str], str] = {}
        self.originals: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def placeholder(self, kind: str, raw: str) -> str:
        key = (kind, raw)
        found = self.by_value.get(key)
        if found is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            found = f"<{kind}_{self.counts[kind]}>"
            self.by_value[key] = found
            self.originals[found] = raw
        return found


def _shrink_to_valid(candidate: str, check: Callable[[str], bool]) -> str | None:
    """The longest prefix of ``candidate``, cut at a space or dash, that passes ``check``.

    A greedy pattern may run into the next word ("DE89 3704 … 00 THANKS"); a
    checksum then fails on the whole match but passes on the real number.
    """
    while candidate:
        if check(candidate):
            return candidate
        cut = max(candidate.rfind(" "), candidate.rfind("-"))
        if cut <= 0:
            return None
        candidate = candidate[:cut].rstrip(" -")
    return None


class Redactor:
    """Finds PII with an ordered list of detectors; earlier detectors win overlaps."""

    def __init__(self, detectors: Iterable[Detector] = DEFAULT_DETECTORS) -> None:
        self.detectors = tuple(detectors)

    def redact(self, payload: Any) -> Redaction:
        """Redact every string inside ``payload``; placeholders are stable within this call."""
        state = _State()
        redacted = self._walk(payload, state)
        return Redaction(redacted, dict(state.originals), dict(state.counts))

    def redact_text(self, text: str) -> Redaction:
        """Redact one string."""
        return self.redact(text)

    def _walk(self, value: Any, state: _State) -> Any:
        if isinstance(value, str):
            return self._text(value, state)
        if isinstance(value, Mapping):
            return {k: self._walk(v, state) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._walk(v, state) for v in value)
        return value

    def _text(self, text: str, state: _State) -> str:
        # Candidates in priority order (the detectors' order), then by position;
        # a candidate overlapping an earlier-priority one is dropped.
        taken: list[tuple[int, int, Detector]] = []
        for det in self.detectors:
            for m in det.pattern.finditer(text):
                start, end = m.span()
                candidate = _shrink_to_valid(m.group(0), det.check) if det.shrink else m.group(0)
                if candidate is not None and not det.shrink and not det.check(candidate):
                    candidate = None
                if candidate is None:
                    continue
                end = start + len(candidate)
                if all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, det))
        if not taken:
            return text
        taken.sort(key=lambda s: s[0])
        out: list[str] = []
        pos = 0
        for start, end, det in taken:
            raw = text[start:end]
            out.append(text[pos:start])
            out.append(state.placeholder(det.kind, raw))
            pos = end
        out.append(text[pos:])
        return "".join(out)
