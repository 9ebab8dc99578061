"""The OpenAI provider and the client against llama.cpp's server with a real (tiny) model.

What a real server does that the test double must copy, and what crmpilot does
about it: the strict JSON schema goes out and the answer is validated (or a
typed error comes back, never an invalid output); out-of-bounds numbers and
answers cut at ``max_tokens`` (``finish_reason: "length"``) get the bounded
re-ask, then :class:`LLMInvalidOutput`; a prompt past the context window is a
400 ``exceed_context_size_error`` mapped to :class:`LLMContextOverflow`, sent
once and never retried; saturated slots queue without spurious timeouts; usage,
cached prompt tokens and cost are recorded.

A 135M model is often wrong: these tests check the protocol and the guarantees,
not the answers. The quality line is printed in the summary, not asserted.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ConfigDict, field_validator
from realmodel_kit import LlamaServer, Wire, make_provider

from crmpilot.enrichments import load_registry, task_for
from crmpilot.enrichments.spec import load_spec
from crmpilot.errors import Retryable
from crmpilot.llm import LLMInvalidOutput, Prompt, TaskSpec
from crmpilot.llm.client import TaskRun
from crmpilot.llm.errors import LLMContextOverflow, LLMTimeout, LLMUnavailable
from crmpilot.llm.openai_provider import response_format_for
from crmpilot.llm.testing import OpenAITestServer
from crmpilot.tasks import CLASSIFY_TICKET, SUMMARIZE_EMAIL

pytestmark = pytest.mark.anyio

_REPO = Path(__file__).resolve().parents[2]

TICKETS: list[tuple[str, str, str]] = [  # (expected category, subject, description)
    ("Refund", "Refund please", "I returned the blender two weeks ago. Please refund the 89 EUR to my card."),
    ("Account Access", "Cannot log in", "I reset my password three times and still cannot log in to my account."),
    ("Shipping & Delivery", "Parcel not delivered", "My order 5521 was due Monday; the tracking has not moved since."),
    ("Billing", "Charged twice", "My invoice for March shows the subscription fee charged twice."),
    ("Technical Issue", "App crashes", "The mobile app crashes with an error every time I open the reports page."),
    ("Security & Fraud", "Unknown transaction", "There is a card payment I did not make. I think my card was stolen."),
]


def _ticket(subject: str, description: str) -> dict[str, Any]:
    return {"subject": subject, "description": description, "origin": "Email", "is_vip": False}


EMAIL = {
    "subject": "Invoice 7781 is wrong",
    "body": "Hello, invoice 7781 from 3 March charges 120 EUR instead of 100 EUR. "
    "Please send a corrected invoice by Friday. Regards, Anna",
    "max_words": 40,
}

LEAD = {  # as the enricher reads an event: every input as text
    "kind": "lead",
    "company": "Nordwind Logistics GmbH",
    "email_domain": "nordwind.example",
    "country": "DE",
    "employees": "850",
    "amount": "45000",
    "currency": "EUR",
    "description": "We want to roll out the CRM add-on to 300 agents this quarter and need a quote.",
}


def _churn_task() -> tuple[TaskSpec[Any], dict[str, Any]]:
    spec, _ = load_spec(_REPO / "examples" / "enrichments" / "churn_risk.yaml")
    payload = {
        "name": "Acme renewal 2027",
        "description": "The customer complained twice about outages. They are evaluating a competitor "
        "and said the contract will not be renewed unless prices drop.",
    }
    return task_for(spec), payload


def _tasks() -> list[tuple[str, TaskSpec[Any], dict[str, Any]]]:
    churn, churn_payload = _churn_task()
    return [
        ("classify_ticket", CLASSIFY_TICKET, _ticket(*TICKETS[0][1:])),
        ("summarize_email", SUMMARIZE_EMAIL, EMAIL),
        ("score_request (built-in spec)", task_for(load_registry([], builtin=True).get("score_request")), LEAD),
        ("churn_risk (declared)", churn, churn_payload),
    ]


def _summary(run: TaskRun[Any]) -> str:
    tokens = f"{run.tokens_in} in ({run.tokens_cached} cached) / {run.tokens_out} out"
    return f"{tokens}, {run.attempts} request(s), {run.latency_ms:.0f} ms"


@pytest.mark.parametrize("name,spec,payload", _tasks(), ids=[t[0] for t in _tasks()])
async def test_every_shipped_task_sends_the_strict_schema_and_gets_a_validated_output_or_a_typed_error(
    name: str,
    spec: TaskSpec[Any],
    payload: dict[str, Any],
    make_client: Any,
    wire: Wire,
    llama: LlamaServer,
    outcomes: list[str],
) -> None:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    client = make_client(max_output_tokens=400, tracer_provider=tp)
    try:
        run = await client.run(spec, payload)
    except LLMInvalidOutput as exc:  # the model's answer did not validate, re-ask included: typed, never an output
        assert exc.attempts == 2 and exc.errors, exc
        assert exc.usage.tokens_in > 0 and exc.usage.requests == 2
        first = exc.errors[0].get("msg")
        outcomes.append(f"{name}: invalid after the re-ask ({len(exc.errors)} error(s), e.g. {first})")
        run = None
    sent = wire.chat_requests[0]
    output_model: type[BaseModel] = spec.output_model
    expected = response_format_for(spec.name, output_model)
    assert sent["response_format"] == expected, "the output model's JSON schema is sent as response_format"
    assert expected["json_schema"]["strict"] is True
    assert sent["model"] == llama.model and sent["max_tokens"] == 400 and sent["temperature"] == 0.0
    if run is None:
        return
    # valid means valid: the output is an instance of the closed output model and re-validates as such
    assert isinstance(run.output, spec.output_model)
    spec.output_model.model_validate(run.output.model_dump())
    # provenance: real usage (not estimated), the served model, cost known (0: a local model has no price)
    assert run.provider == "llama.cpp" and run.model == llama.model and run.model_version
    assert run.tokens_in > 0 and run.tokens_out > 0 and not run.usage_estimated and run.cost_usd == 0
    assert run.tokens_cached >= 0 and run.attempts in (1, 2) and not run.cache_hit
    now = datetime.now(UTC)
    prov = run.provenance(source_topic="t", source_partition=0, source_offset=0, source_event_id="e", event_time=now)
    assert prov.model == llama.model and prov.tokens_in == run.tokens_in and prov.attempts == run.attempts
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.name == f"chat {llama.model}" and span.attributes["gen_ai.usage.input_tokens"] == run.tokens_in
    assert span.attributes["gen_ai.response.model"] == run.model_version
    outcomes.append(f"{name}: valid ({_summary(run)})")


async def test_closed_fields_get_their_confidence_from_the_tokens_the_model_wrote(
    make_client: Any, wire: Wire, outcomes: list[str]
) -> None:
    """llama.cpp returns ``logprobs``; the category's confidence is the probability of its tokens, not a report."""
    client = make_client(max_output_tokens=400)
    measured = []
    for _, subject, description in TICKETS[:3]:
        try:
            run = await client.run(CLASSIFY_TICKET, _ticket(subject, description))
        except LLMInvalidOutput:
            continue
        assert run.confidence_source == "logprobs", "llama.cpp sends logprobs: the confidence must come from them"
        measured.append(run.output.confidence.category)
    assert all(req.get("logprobs") is True for req in wire.chat_requests)
    assert measured, "no valid answer among three tickets: nothing to measure"
    assert all(0 < p <= 1 for p in measured)
    outcomes.append(f"logprobs: category confidence from tokens {', '.join(f'{p:.3f}' for p in measured)}")


async def test_an_answer_cut_at_max_tokens_is_reasked_once_then_refused_with_a_typed_error(
    make_client: Any, wire: Wire
) -> None:
    client = make_client(max_output_tokens=8)  # no classification fits in 8 tokens: cut mid-JSON
    with pytest.raises(LLMInvalidOutput) as info:
        await client.run(CLASSIFY_TICKET, _ticket(*TICKETS[1][1:]))
    assert info.value.attempts == 2 and not isinstance(info.value, Retryable)
    finishes = [r["choices"][0]["finish_reason"] for status, r in wire.responses if status == 200 and r]
    assert finishes == ["length", "length"]
    assert "cut off at the token limit" in wire.chat_requests[1]["messages"][-1]["content"]
    assert info.value.usage.tokens_out == 16  # both cut answers are paid for


class Bounded(BaseModel):
    """A number whose bound the JSON schema does not carry (a validator): only pydantic can refuse it."""

    model_config = ConfigDict(extra="forbid")
    value: int

    @field_validator("value")
    @classmethod
    def _bounded(cls, v: int) -> int:
        if not 0 <= v <= 10:
            raise ValueError("value must be between 0 and 10")
        return v


BOUNDED = TaskSpec(
    name="bounded_number",
    prompt=Prompt(
        id="bounded_number",
        version="1",
        system='Copy the number you are given into a JSON object {"value": <number>}.',
        user_template="The number is {number}.",
    ),
    output_model=Bounded,
)


async def test_an_out_of_bounds_number_is_never_returned_as_valid(
    make_client: Any, wire: Wire, outcomes: list[str]
) -> None:
    client = make_client(max_output_tokens=24)
    try:
        run = await client.run(BOUNDED, {"number": "1000000000000"})
    except LLMInvalidOutput as exc:
        assert exc.attempts == 2
        outcomes.append(f"out-of-bounds number: refused after the re-ask ({exc.errors[0].get('msg')})")
        return
    assert 0 <= run.output.value <= 10  # the re-ask repaired it (or the model never copied it)
    outcomes.append(f"out-of-bounds number: value {run.output.value} after {run.attempts} request(s)")


async def test_context_overflow_is_a_typed_non_retryable_error_sent_once(
    make_client: Any, wire: Wire, llama: LlamaServer, outcomes: list[str]
) -> None:
    client = make_client()
    long_description = "The invoice was wrong again. " * (llama.n_ctx_slot // 3)  # ~2 tokens a word: past one slot
    with pytest.raises(LLMContextOverflow) as info:
        await client.run(CLASSIFY_TICKET, _ticket("Long ticket", long_description))
    err = info.value
    assert not isinstance(err, Retryable) and err.status_code == 400 and err.attempts == 1
    assert len(wire.chat_requests) == 1, "no retry: the same input overflows again"
    assert err.n_ctx == llama.n_ctx_slot and err.n_prompt_tokens is not None and err.n_prompt_tokens >= err.n_ctx
    assert "exceeds the available context size" in str(err)
    status, body = wire.responses[0]
    assert status == 400 and body["error"]["type"] == "exceed_context_size_error"
    outcomes.append(f"context overflow: {err.n_prompt_tokens} prompt tokens > n_ctx {err.n_ctx}: {err.code}, 1 request")


async def test_saturated_slots_queue_in_the_client_and_nothing_times_out(
    make_client: Any, wire: Wire, llama: LlamaServer, outcomes: list[str]
) -> None:
    """6 calls at once on ``slots`` slots: the limiter holds the rest; an HTTP timeout starts when its call is sent."""
    calls = 6
    single = make_client(max_output_tokens=160)
    t0 = time.monotonic()
    await _classify_or_invalid(single, 0)
    one_call = time.monotonic() - t0
    timeout = max(15.0, 4 * one_call)  # far below what 6 queued calls take, well above one
    client = make_client(max_concurrency=llama.slots, timeout=timeout, max_output_tokens=160)
    wire.max_in_flight = 0
    t0 = time.monotonic()
    results = await asyncio.gather(*(_classify_or_invalid(client, i) for i in range(calls)), return_exceptions=True)
    elapsed = time.monotonic() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert not any(isinstance(r, LLMTimeout | LLMUnavailable) for r in results)
    assert wire.max_in_flight <= llama.slots
    outcomes.append(
        f"saturation: {calls} calls on {llama.slots} slots in {elapsed:.1f} s ({calls / elapsed:.2f} calls/s; "
        f"one alone "
        f"{one_call:.1f} s), peak {wire.max_in_flight} in flight, timeout {timeout:.0f} s, none timed out"
    )


async def test_without_the_limiter_the_server_queues_the_excess_itself(
    make_client: Any, wire: Wire, llama: LlamaServer
) -> None:
    """No 503 and no Retry-After from llama.cpp when every slot is busy: requests wait in its queue."""
    client = make_client(max_concurrency=3 * llama.slots, timeout=240.0, max_output_tokens=32)
    calls = [_classify_or_invalid(client, 10 + i) for i in range(3 * llama.slots)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert {status for status, _ in wire.responses} == {200}
    assert wire.max_in_flight > llama.slots  # more requests at the server than it has slots: it queued them


async def _classify_or_invalid(client: Any, i: int) -> str:
    _, subject, description = TICKETS[i % len(TICKETS)]
    try:
        run = await client.run(CLASSIFY_TICKET, _ticket(f"{subject} #{i}", description), bypass_cache=True)
    except LLMInvalidOutput:
        return "invalid"
    return str(run.output.category)


async def test_cached_prompt_tokens_are_recorded(make_client: Any, wire: Wire, outcomes: list[str]) -> None:
    client = make_client(max_output_tokens=24)
    runs: list[TaskRun[Any] | None] = []
    for number in ("3", "4"):  # the same system prompt: the second call reads it from the slot's cache
        try:
            runs.append(await client.run(BOUNDED, {"number": number}))
        except LLMInvalidOutput:
            runs.append(None)
    usage = wire.responses[-1][1]["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert 0 < cached < usage["prompt_tokens"]
    if runs[1] is not None and runs[1].attempts == 1:
        assert runs[1].tokens_cached == cached and runs[1].tokens_in == usage["prompt_tokens"]
    outcomes.append(f"prompt cache: 2nd call {cached} of {usage['prompt_tokens']} prompt tokens cached")


async def test_an_unknown_model_name_is_answered_by_the_loaded_model(
    llama: LlamaServer, wire: Wire, outcomes: list[str]
) -> None:
    """llama.cpp serves one model whatever the request names: provenance keeps what was asked and what answered."""
    provider = make_provider(llama, wire, max_output_tokens=24).with_model("gpt-4o-mini")
    try:
        completion = await provider.complete(BOUNDED, {"number": "5"})
    except LLMInvalidOutput:
        completion = None
    finally:
        await provider._client.close()
    status, body = wire.responses[0]
    assert status == 200 and body["choices"]
    if completion is not None:
        assert completion.model == "gpt-4o-mini" and completion.model_version == body["model"]
    outcomes.append(f"unknown model name 'gpt-4o-mini': answered (200), response names model {body['model']!r}")


async def test_the_quality_line_on_a_handful_of_tickets(make_client: Any, outcomes: list[str]) -> None:
    """Reported, not asserted: a protocol check, not a model contest."""
    client = make_client(max_output_tokens=300)
    right = invalid = 0
    t0 = time.monotonic()
    for expected, subject, description in TICKETS:
        try:
            run = await client.run(CLASSIFY_TICKET, _ticket(subject, description))
        except LLMInvalidOutput:
            invalid += 1
            continue
        right += run.output.category == expected
    outcomes.append(
        f"quality: {right}/{len(TICKETS)} tickets in the expected category, {invalid} invalid after the re-ask, "
        f"{time.monotonic() - t0:.1f} s"
    )


_ERROR_KEYS = ("code", "message", "type", "n_prompt_tokens", "n_ctx")


async def test_the_test_server_answers_in_the_same_shapes(llama: LlamaServer) -> None:
    """The OpenAI-protocol test double and the real server: same overflow body, same cut, same usage fields."""
    long_prompt = "word " * (2 * llama.n_ctx_slot)
    cut = {"messages": [{"role": "user", "content": "Write a long story about a ship."}], "max_tokens": 5}
    over = {"messages": [{"role": "user", "content": long_prompt}], "max_tokens": 5}
    story = "Once upon a time there was a ship that sailed far away."
    with OpenAITestServer(lambda req: story, n_ctx=llama.n_ctx_slot) as srv:
        async with httpx.AsyncClient(timeout=60) as http:
            shapes = []
            for base, model in ((llama.base_url, llama.model), (srv.base_url, "gpt-4o-mini")):
                r_cut = await http.post(f"{base}/chat/completions", json={"model": model, **cut})
                r_over = await http.post(f"{base}/chat/completions", json={"model": model, **over})
                body = r_cut.json()
                shapes.append(
                    (
                        r_cut.status_code,
                        body["choices"][0]["finish_reason"],
                        body["usage"]["completion_tokens"],
                        sorted(body["usage"]),
                        sorted(body["usage"]["prompt_tokens_details"]),
                        r_over.status_code,
                        r_over.json()["error"]["type"],
                        sorted(k for k in r_over.json()["error"] if k in _ERROR_KEYS),
                    )
                )
    real, double = shapes
    assert real == double, f"llama.cpp {real} vs test server {double}"
    assert real[1] == "length" and real[5] == 400 and real[6] == "exceed_context_size_error"
