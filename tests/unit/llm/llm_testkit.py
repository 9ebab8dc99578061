"""Shared pieces of the LLM client tests: a sample task, a fast retry policy, client builders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from crmpilot.llm import LLMClient, Prompt, RetryPolicy, TaskSpec
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.testing import OpenAITestServer


class Triage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Literal["Billing", "Refund", "Other"]
    priority: Literal["Low", "High"]
    reply_to: str = ""


TRIAGE = TaskSpec(
    name="triage",
    prompt=Prompt(
        id="triage",
        version="1",
        system="You triage customer tickets. Answer in JSON.",
        user_template="Subject: {subject}\n\n{description}",
    ),
    output_model=Triage,
    restore_fields=("reply_to",),
)

GOOD: dict[str, Any] = {"category": "Billing", "priority": "High"}

FAST_RETRY = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.01, deadline=15.0)


def provider_for(srv: OpenAITestServer, model: str = "gpt-4o-mini", **kw: Any) -> OpenAIProvider:
    kw.setdefault("timeout", 5.0)
    return OpenAIProvider(model=model, base_url=srv.base_url, api_key="sk-test", **kw)


def client_for(
    srv: OpenAITestServer, *, model: str = "gpt-4o-mini", provider_kw: dict[str, Any] | None = None, **kw: Any
) -> LLMClient:
    kw.setdefault("retry", FAST_RETRY)
    return LLMClient(provider_for(srv, model, **(provider_kw or {})), **kw)


def ticket(n: int = 0) -> dict[str, str]:
    return {"subject": f"Invoice question {n}", "description": f"I was charged twice for order {n}."}
