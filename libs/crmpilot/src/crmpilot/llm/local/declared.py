"""Declared tasks on the local model: enum fields zero-shot (or by a trained head), extractive text fields.

A declared task (an enrichment spec) describes its outputs as
:class:`~crmpilot.llm.base.OutputShape`; this module answers the shapes an
embedding model can answer honestly:

- ``enum``: the zero-shot head over the values' descriptions (the same head the
  ticket classifier uses over category descriptions), or a head trained for that
  field (``crmpilot train --enrichment NAME --field F``, configured by
  ``CRMPILOT_LLM_LOCAL_HEADS``); the value's probability is its confidence,
  except when the head's out-of-scope gate fires (the input is far from every
  closed case the trained head learned from, or from every value's description
  zero-shot): then the confidence is 0, which the enrichment pipeline records
  as the field's review reason ``out_of_scope`` (never applied nor suggested);
- ``text`` with ``extractive``: the sentence of the source inputs closest to the
  field's description (a verbatim span, so grounding holds by construction); its
  confidence is its softmax share among the sentences. With ``max_sentences`` above
  one, the closest sentences that fit, in the input's order (confidence: the closest
  one's share).

Any other shape (boolean, number, free text, quotes, items) has no honest answer
here unless the spec names a registered **local rule** for it (``outputs.<field>.local``):
the rule is called with the inputs and the answer so far (every field without
a rule, then the rule fields before it), and gives the value and its confidence.
Without one, :func:`unsupported` names the field, and the service refuses to start
with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np

from crmpilot.errors import CrmpilotError, Fatal
from crmpilot.llm.base import OutputShape, TaskSpec
from crmpilot.llm.errors import LocalCodeFailed
from crmpilot.llm.local.anchors import softmax
from crmpilot.llm.local.embedder import EmbeddingBatcher
from crmpilot.llm.local.heads import DEFAULT_TEMPERATURE, TicketClassifierHead, ZeroShotHead, head_proba, scope_of
from crmpilot.llm.local.once import Once
from crmpilot.llm.local.trained import TrainedHead
from crmpilot.text import sentences

__all__ = ["DeclaredAnswerer", "UnsupportedShape", "unsupported"]

WHAT_ANSWERS = (
    "the local model answers enum fields and extractive text fields (`extractive: true`), and any field whose "
    "`local:` names a registered local rule; point CRMPILOT_LLM_PROVIDER=openai at any OpenAI-compatible endpoint "
    "to answer it"
)


class UnsupportedShape(Fatal):
    """A declared output the local model has no honest method for (the service refuses it at start)."""


def unsupported(
    spec: TaskSpec[Any], heads: Mapping[tuple[str, str], TicketClassifierHead] | None = None
) -> list[tuple[str, str]]:
    """``(field, why)`` for every output of ``spec`` the local model cannot answer (a trained head that does not fit
    included)."""
    out = []
    for (task, field), head in (heads or {}).items():
        shape = next((s for s in spec.outputs if s.name == field), None)
        if task != spec.name or shape is None:
            continue
        values = {label.name for label in shape.labels}
        if shape.kind != "enum" or not set(head.labels) <= values:
            stray = sorted(set(head.labels) - values)
            out.append(
                (
                    field,
                    f"its trained head {head.id} ({', '.join(stray) or 'not an enum field'}): labels that are "
                    f"not values of {field}",
                )
            )
    for shape in () if spec.local is not None else spec.outputs:  # a task's own local method answers every field
        if shape.rule is not None or shape.kind == "enum" or (shape.kind == "text" and shape.extractive):
            continue
        kind = (
            "free text" if shape.kind == "text" else f"{'an' if shape.kind[0] in 'aeiou' else 'a'} {shape.kind} field"
        )
        out.append((shape.name, f"{kind}: {WHAT_ANSWERS}"))
    return out


class DeclaredAnswerer:
    """Answers declared tasks; zero-shot heads are built once per (task, field)."""

    def __init__(
        self,
        batcher: EmbeddingBatcher,
        *,
        heads: Mapping[tuple[str, str], TicketClassifierHead] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        self.batcher = batcher
        self.heads = dict(heads or {})
        self._temperature = temperature
        self._zero_shot: Once[tuple[str, str], ZeroShotHead] = Once()
        self._queries: Once[tuple[str, str], np.ndarray] = Once()

    def head_ids(self, task: str) -> dict[str, str]:
        return {f: h.id for (t, f), h in self.heads.items() if t == task}

    async def answer(self, spec: TaskSpec[Any], payload: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """The output (``confidence`` included, as the output model wants it) and the tokens read."""
        text = "\n".join(str(v) for v in payload.values() if isinstance(v, str) and v.strip())
        vectors, tokens = await asyncio.gather(self.batcher.query([text]), self.batcher.token_count(text))
        answer: dict[str, Any] = {}
        confidence: dict[str, float] = {}
        for shape in spec.outputs:
            if shape.rule is not None:
                continue  # answered below, once every other field is
            if shape.kind == "enum":
                answer[shape.name], confidence[shape.name] = await self._enum(spec.name, shape, vectors, text)
            elif shape.kind == "text" and shape.extractive:
                answer[shape.name], confidence[shape.name] = await self._extract(spec.name, shape, payload)
            else:
                raise UnsupportedShape(f"{spec.name}.{shape.name}: {dict(unsupported(spec))[shape.name]}")
        for shape in spec.outputs:
            if shape.rule is not None:
                try:
                    answer[shape.name], confidence[shape.name] = shape.rule(payload, dict(answer))
                except CrmpilotError:
                    raise
                except Exception as exc:  # user code: this input's failure, with its cause
                    rule = getattr(shape.rule, "name", shape.name)
                    raise LocalCodeFailed(
                        f"{spec.name}.{shape.name}: the local rule {rule!r} failed: {type(exc).__name__}: {exc}"[:1000]
                    ) from exc
        answer["confidence"] = confidence
        return answer, tokens

    async def _enum(self, task: str, shape: OutputShape, vectors: np.ndarray, text: str) -> tuple[str, float]:
        head: TicketClassifierHead | None = self.heads.get((task, shape.name))
        values = tuple(label.name for label in shape.labels)
        if isinstance(head, TrainedHead) and head.labels != values:
            head = self.heads[(task, shape.name)] = head.aligned(values)  # same id, the spec's order
        if head is None:
            head = await self._zero_shot.get(
                (task, shape.name),
                lambda: ZeroShotHead.build(shape.labels, self.batcher, temperature=self._temperature),
            )
        probs = head_proba(head, vectors, [text])[0]
        best = int(np.argmax(probs))
        scope = scope_of(head, vectors)
        if scope is not None and bool(scope.outside[0]):
            return head.labels[best], 0.0  # out of scope: the pipeline says so (review reason out_of_scope)
        return head.labels[best], round(float(probs[best]), 3)

    async def _extract(self, task: str, shape: OutputShape, payload: Mapping[str, Any]) -> tuple[str, float]:
        spans = [
            s.text.strip()
            for source in shape.sources
            if isinstance(value := payload.get(source), str)
            for s in sentences(value)
            if s.text.strip()
        ]
        limit = shape.max_length or 1000
        spans = [s for s in dict.fromkeys(spans) if len(s) <= limit]
        if not spans:
            return "", 0.0
        query = await self._queries.get((task, shape.name), lambda: self._query_vector(shape))
        found = await self.batcher.passage(spans)
        scores = softmax(np.atleast_2d(found @ query), self._temperature)[0]
        best = int(np.argmax(scores))
        if shape.max_sentences == 1:
            return spans[best], round(float(scores[best]), 3)
        chosen: list[int] = []
        for i in np.argsort(-scores, kind="stable")[: shape.max_sentences]:  # the closest, while they fit
            if len(_joined([spans[j] for j in sorted((*chosen, int(i)))])) <= limit:
                chosen.append(int(i))
        chosen.sort()  # in the input's order
        return _joined([spans[i] for i in chosen]), round(float(scores[best]), 3)

    async def _query_vector(self, shape: OutputShape) -> np.ndarray:
        vectors = await self.batcher.query([shape.description or shape.name.replace("_", " ")])
        return np.asarray(vectors[0])


def _joined(spans: list[str]) -> str:
    """Sentences as one text that splits back into the same sentences: a space after a sentence's end mark before a
    capital, else a blank line (a line without an end mark would run into the next one)."""
    out = ""
    for span in spans:
        if not out:
            out = span
        elif out.endswith((".", "!", "?", "…")) and not span[:1].islower():
            out = f"{out} {span}"
        else:
            out = f"{out}\n\n{span}"
    return out
