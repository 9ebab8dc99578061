"""The zero-shot head's out-of-scope bound on the real model: CRM tickets pass, an unrelated request does not."""

from __future__ import annotations

import asyncio

from crmpilot.llm.local import LocalProvider
from crmpilot.llm.local.heads import DEFAULT_MIN_SIMILARITY, OUT_OF_SCOPE_NOTE, ZeroShotHead, scope_of
from crmpilot.ops.samples import _CASES
from crmpilot.tasks import CLASSIFY_TICKET
from crmpilot.tasks.local.classify import ticket_text
from crmpilot.tasks.taxonomy import DEFAULT_CATEGORIES

UNRELATED = "Who won the football match last night?"


def test_the_sample_cases_are_in_scope_and_an_unrelated_request_is_not(provider: LocalProvider) -> None:
    head = asyncio.run(provider.head_for(DEFAULT_CATEGORIES))
    assert isinstance(head, ZeroShotHead) and head.min_similarity == DEFAULT_MIN_SIMILARITY
    texts = [ticket_text({"subject": s, "description": d}) for s, d in _CASES]
    vectors = provider.batcher.encoder.encode([*texts, UNRELATED], is_query=True)
    scope = scope_of(head, vectors)
    assert scope is not None and scope.measure == "closest category description"
    assert scope.outside.tolist() == [False] * len(texts) + [True]


def test_an_unrelated_ticket_gets_no_category_confidence_and_says_why(provider: LocalProvider) -> None:
    payload = {"subject": UNRELATED, "description": "", "origin": "web", "is_vip": False}
    out = asyncio.run(provider.complete(CLASSIFY_TICKET, payload)).output
    assert out.confidence.category == 0.0
    assert out.rationale.startswith(f"{OUT_OF_SCOPE_NOTE}: closest category description")
    related = asyncio.run(
        provider.complete(CLASSIFY_TICKET, {**payload, "subject": "Cannot log in after password reset"})
    ).output
    assert related.confidence.category > 0.5 and not related.rationale.startswith(OUT_OF_SCOPE_NOTE)


def test_no_bound_means_no_gate(provider: LocalProvider) -> None:
    head = asyncio.run(ZeroShotHead.build(DEFAULT_CATEGORIES, provider.batcher, min_similarity=None))
    assert scope_of(head, provider.batcher.encoder.encode([UNRELATED], is_query=True)) is None
