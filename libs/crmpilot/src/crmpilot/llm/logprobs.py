"""Confidence from token log-probabilities: how likely the model found the value it wrote.

A model asked "how sure are you" answers with a number it makes up; the
probabilities of the tokens it actually generated are measured. For a field whose
answer is one value of a closed list (an enum, a boolean), the probability of the
value is the product of the probabilities of the tokens that spell it (under a
grammar-constrained decoder, the first token that tells the values apart carries
almost all of it; the rest are near 1).

:func:`value_probabilities` finds each top-level field's value in the answer's
JSON text and multiplies the probabilities of the tokens that overlap it.
:func:`with_logprob_confidence` writes them into the output's confidence fields
as the task maps them (:attr:`crmpilot.llm.base.TaskSpec.logprob_confidence`).
When the endpoint returns no log-probabilities, or its tokens do not spell the
answer, nothing changes and the confidence stays the model's own report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["confidence_at", "token_logprobs", "value_probabilities", "with_confidences", "with_logprob_confidence"]

OutT = TypeVar("OutT", bound=BaseModel)

_WS = " \t\n\r"


def token_logprobs(choice: Any) -> list[tuple[str, float]]:
    """``(token, logprob)`` of each generated token of a chat completion choice; empty when the endpoint sent none."""
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return []
    out = []
    for item in content:
        token, logprob = getattr(item, "token", None), getattr(item, "logprob", None)
        if not isinstance(token, str) or not isinstance(logprob, int | float) or math.isnan(logprob):
            return []
        out.append((token, float(logprob)))
    return out


def _top_level_spans(text: str) -> dict[str, tuple[int, int, Any]]:
    """Each top-level key of the JSON object ``text`` → (start, end, value) of its value in ``text``."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int, Any]] = {}
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        return {}
    i = _skip(text, i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if i >= len(text) or text[i] != ":" or not isinstance(key, str):
            return {}
        start = _skip(text, i + 1)
        value, end = decoder.raw_decode(text, start)
        spans[key] = (start, end, value)
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
    return spans


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def value_probabilities(text: str, tokens: Sequence[tuple[str, float]], fields: Sequence[str]) -> dict[str, float]:
    """The probability of each of ``fields``' values in the answer ``text`` (a JSON object), from its tokens.

    A string value's characters are those between its quotes; a token counts when it overlaps them (a token
    that holds the opening quote and the first letters decides the value too). Returns only the fields it could
    measure; nothing when the tokens do not spell ``text`` (around it they may: llama.cpp's server hands out
    the content without the ```json fence the model wrote, but the fence's tokens with the rest).
    """
    spelt = "".join(t for t, _ in tokens)
    shift = spelt.find(text) if text else -1  # llama.cpp strips a ```json fence from the content, not the tokens
    if shift < 0:
        return {}
    try:
        spans = _top_level_spans(text)
    except ValueError:  # not JSON after all: nothing to measure
        return {}
    bounds = []
    pos = -shift
    for token, logprob in tokens:
        bounds.append((pos, pos + len(token), logprob))
        pos += len(token)
    out: dict[str, float] = {}
    for name in fields:
        if name not in spans:
            continue
        start, end, value = spans[name]
        if isinstance(value, str):
            start, end = start + 1, end - 1  # inside the quotes
        if end <= start:
            continue
        total = sum(lp for a, b, lp in bounds if a < end and b > start)
        out[name] = min(1.0, math.exp(total))
    return out


def with_confidences(output: OutT, values: Mapping[str, float]) -> OutT:
    """``output`` with the confidence at each path (``confidence`` or ``confidence.<name>``) set to its value,
    validated again (pydantic's ``ValidationError`` when a path does not fit the model)."""
    data = output.model_dump(mode="json")
    for path, value in values.items():
        target: dict[str, Any] = data
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = round(value, 6)
    return type(output).model_validate(data)


def confidence_at(output: BaseModel, path: str) -> float:
    """The confidence at ``path`` (``confidence`` or ``confidence.<name>``) of ``output``."""
    value: Any = output
    for part in path.split("."):
        value = getattr(value, part)
    return float(value)


def with_logprob_confidence(
    output: OutT, mapping: Mapping[str, str], probabilities: Mapping[str, float]
) -> OutT | None:
    """``output`` with each confidence path of ``mapping`` (``confidence`` or ``confidence.<name>``) set to the
    probability of its field's value; ``None`` when a mapped field was not measured (then nothing is replaced)."""
    if not mapping or any(field not in probabilities for field in mapping.values()):
        return None
    try:
        return with_confidences(output, {path: probabilities[field] for path, field in mapping.items()})
    except ValidationError:  # a mapping that does not fit the model is a task bug; keep the validated answer
        return None
