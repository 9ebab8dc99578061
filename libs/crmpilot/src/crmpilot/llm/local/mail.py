"""The new part of an email: quoted replies, forwarded headers and signatures cut off.

Returns regions (offsets into the original body) rather than a cleaned copy, so
sentences and quotes taken from them remain verbatim substrings of the body.
Covers the common English and Russian clients (plus German, French, Spanish
reply headers). Hand-written because the libraries for this (talon,
email-reply-parser) are unmaintained or English-only.
"""

from __future__ import annotations

import re

__all__ = ["new_text_regions"]

_REPLY_HEADER = re.compile(
    r"^(?:on\b.{0,200}\bwrote:|am\b.{0,200}\bschrieb\b.{0,60}:|le\b.{0,200}\ba écrit\s*:|el\b.{0,200}\bescribió:"
    r"|.{0,200}\b(?:пишет|писал[а]?|написал[а]?)\s*:)$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^(?:-{2,}\s*(?:original message|forwarded message|исходное сообщение|пересылаемое сообщение|"
    r"переадресованное сообщение|ursprüngliche nachricht|message d'origine)\s*-{2,}|_{5,}|-{5,})$",
    re.IGNORECASE,
)
_HEADER_BLOCK = re.compile(r"^(?:from|von|de|от)\s*:\s*\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^(?:sent|date|to|subject|gesendet|an|envoyé|отправлено|дата|кому|тема)\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^(?:--\s*|(?:best|kind|warm|many thanks and)?\s*regards\b.{0,30}|best(?: wishes)?[,!.]?|cheers[,!.]?"
    r"|thanks(?: again| in advance)?[,!.]?|thank you[,!.]?|many thanks[,!.]?|sincerely[,!.]?"
    r"|yours(?: truly| sincerely)?[,!.]?|с уважением\b.{0,40}|спасибо[,!.]?|заранее спасибо[,!.]?"
    r"|всего (?:доброго|наилучшего)[,!.]?|с наилучшими пожеланиями.{0,20}"
    r"|mit freundlichen grüßen.{0,20}|cordialement.{0,20}|(?:un )?saludo(?:s)? cordial(?:es)?.{0,20}|atentamente.{0,20}"
    r"|sent from my \w+.{0,30}|отправлено (?:с|из) .{0,40})$",
    re.IGNORECASE,
)


def _lines(body: str) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    for raw in body.splitlines(keepends=True):
        out.append((pos, pos + len(raw.rstrip("\r\n")), raw.strip()))
        pos += len(raw)
    return out


def new_text_regions(body: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the body's own text, in order, quoted lines and tails removed."""
    lines = _lines(body)
    regions: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for i, (start, end, stripped) in enumerate(lines):
        following = lines[i + 1][2] if i + 1 < len(lines) else ""
        if (
            _REPLY_HEADER.match(stripped)
            or (
                stripped.lower().startswith(("on ", "am ", "le ", "el "))
                and _REPLY_HEADER.match(f"{stripped} {following}")
            )
            or _SEPARATOR.match(stripped)
            or (_HEADER_BLOCK.match(stripped) and _HEADER_NEXT.match(following))
            or _SIGNATURE.match(stripped)
        ):
            break
        if stripped.startswith(">"):
            if current:
                regions.append(current)
            current = None
            continue
        current = (current[0], end) if current else (start, end)
    if current:
        regions.append(current)
    return [(a, b) for a, b in regions if body[a:b].strip()]
