"""What a real OpenAI-compatible server does that a lenient double would not, and what the client makes of it.

The OpenAI-protocol test server behaves like llama.cpp's ``llama-server`` here
(tests/realmodel checks the same against the real one): a prompt past the
context window is a 400 ``exceed_context_size_error``, an answer past
``max_tokens`` is cut with ``finish_reason: "length"``, and ``usage`` reports
the prompt tokens read from the server's prompt cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import httpx2
import openai
import pytest
from llm_testkit import GOOD, TRIAGE, client_for, provider_for, ticket

from crmpilot.errors import Fatal, Retryable
from crmpilot.llm import LLMBadRequest, LLMInvalidOutput
from crmpilot.llm.errors import LLMContextOverflow
from crmpilot.llm.openai_provider import translate_openai_error
from crmpilot.llm.testing import Fail, OpenAITestServer, Reply, context_overflow

pytestmark = pytest.mark.anyio


def _status_error(status: int, body: Mapping[str, object]) -> openai.APIStatusError:
    """The SDK's exception for an HTTP error with ``body``, as its client builds it."""
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, json=body, request=request)
    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1/v1")
    return client._make_status_error_from_response(response)


def test_llama_cpp_context_overflow_is_typed_with_the_servers_counts() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
        }
    }
    err = translate_openai_error(_status_error(400, body), model="m")
    assert isinstance(err, LLMContextOverflow) and isinstance(err, LLMBadRequest)
    assert not isinstance(err, Retryable) and not isinstance(err, Fatal)
    assert (err.n_prompt_tokens, err.n_ctx, err.status_code, err.api_code) == (5000, 4096, 400, "400")
    assert err.code == "llm_context_overflow"
    assert "exceeds the available context size" in str(err)


@pytest.mark.parametrize(
    "error",
    [
        {  # OpenAI
            "message": "This model's maximum context length is 128000 tokens. "
            "However, your messages resulted in 130000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
        {  # vLLM
            "message": "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens "
            "(2000 in the messages, 1000 in the completion).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    ],
    ids=["openai", "vllm"],
)
def test_other_servers_context_overflow_wordings_are_typed_too(error: dict[str, object]) -> None:
    err = translate_openai_error(_status_error(400, {"error": error}))
    assert isinstance(err, LLMContextOverflow)
    assert err.n_ctx is None and err.n_prompt_tokens is None


def test_an_ordinary_bad_request_is_not_a_context_overflow() -> None:
    error = {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "param": "temperature"}
    body = {"error": {**error, "code": None}}
    err = translate_openai_error(_status_error(400, body))
    assert type(err) is LLMBadRequest and err.param == "temperature"


async def test_context_overflow_is_not_retried_and_carries_the_servers_reason() -> None:
    with OpenAITestServer(lambda req: GOOD, n_ctx=64) as srv:
        async with client_for(srv) as client:
            with pytest.raises(LLMContextOverflow) as info:
                await client.run(TRIAGE, {"subject": "long", "description": "word " * 400})
        assert srv.request_count == 1  # no retry storm: the same input overflows again
    err = info.value
    assert err.attempts == 1 and err.n_ctx == 64 and err.n_prompt_tokens is not None and err.n_prompt_tokens >= 64
    assert "exceeds the available context size (64 tokens)" in str(err)


async def test_the_test_servers_overflow_body_is_llama_cpps() -> None:
    with OpenAITestServer(lambda req: GOOD, script=[context_overflow(5000, 4096)]) as srv:
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert resp.status_code == 400
    assert resp.json() == {
        "error": {
            "code": 400,
            "message": "request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "param": None,
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
        }
    }


async def test_a_prompt_that_fits_is_answered() -> None:
    with OpenAITestServer(lambda req: GOOD, n_ctx=4096) as srv:
        async with client_for(srv) as client:
            run = await client.run(TRIAGE, ticket())
    assert run.output.category == "Billing"


async def test_an_answer_past_max_tokens_is_cut_with_finish_reason_length_and_refused_after_the_reask() -> None:
    long_answer = {**GOOD, "reply_to": "x" * 400}
    with OpenAITestServer(lambda req: long_answer) as srv:
        provider = provider_for(srv, max_output_tokens=20, max_reasks=1)
        with pytest.raises(LLMInvalidOutput) as info:
            await provider.complete(TRIAGE, ticket())
        await provider.aclose()
        reqs = srv.requests
    assert len(reqs) == 2 and info.value.attempts == 2  # one bounded re-ask, then a typed error
    assert reqs[0].body["max_tokens"] == 20
    reask = reqs[1].messages
    assert reask[-2]["role"] == "assistant" and len(reask[-2]["content"]) == 80  # the cut answer, 20 tokens of it
    assert "cut off at the token limit" in reask[-1]["content"]


async def test_a_cut_answer_is_never_returned_as_valid_even_when_the_reask_succeeds() -> None:
    with OpenAITestServer(lambda req: GOOD) as srv:
        srv.enqueue(Reply({**GOOD, "reply_to": "y" * 400}))
        provider = provider_for(srv, max_output_tokens=30, max_reasks=1)
        completion = await provider.complete(TRIAGE, ticket())
        await provider.aclose()
    assert completion.output.model_dump() == {**GOOD, "reply_to": ""}
    assert completion.finish_reasons == ("length", "stop") and completion.requests == 2


async def test_the_reask_repeats_at_most_a_bounded_part_of_a_runaway_answer() -> None:
    with OpenAITestServer(lambda req: "z" * 20_000) as srv:
        provider = provider_for(srv, max_output_tokens=None, max_reasks=1)
        with pytest.raises(LLMInvalidOutput):
            await provider.complete(TRIAGE, ticket())
        await provider.aclose()
        echoed = srv.requests[1].messages[-2]["content"]
    assert len(echoed) < 2100 and echoed.endswith("…")


async def test_truncation_can_be_turned_off() -> None:
    with OpenAITestServer(lambda req: {**GOOD, "reply_to": "x" * 400}, truncate_at_max_tokens=False) as srv:
        provider = provider_for(srv, max_output_tokens=20)
        completion = await provider.complete(TRIAGE, ticket())
        await provider.aclose()
    assert completion.finish_reasons == ("stop",)


async def test_cached_prompt_tokens_are_reported_and_kept_in_the_run() -> None:
    with OpenAITestServer(lambda req: GOOD) as srv:
        async with client_for(srv) as client:
            first = await client.run(TRIAGE, ticket(1))
            second = await client.run(TRIAGE, ticket(2))  # same system prompt: a shared prefix
    assert first.tokens_cached == 0
    assert 0 < second.tokens_cached < second.tokens_in


async def test_usage_details_follow_openais_shape() -> None:
    with OpenAITestServer(lambda req: GOOD) as srv:
        async with httpx.AsyncClient() as http:
            body = {"model": "m", "messages": [{"role": "user", "content": "hello there, a prompt"}]}
            await http.post(f"{srv.base_url}/chat/completions", json=body)
            resp = await http.post(f"{srv.base_url}/chat/completions", json=body)
    usage = resp.json()["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}
    text = "hello there, a prompt"  # 21 characters: 6 tokens, of which 5 whole ones are a repeat
    assert (usage["prompt_tokens"], usage["prompt_tokens_details"]) == (6, {"cached_tokens": len(text) // 4})
    assert json.dumps(usage)  # plain JSON


async def test_a_scripted_error_may_carry_extra_fields() -> None:
    with OpenAITestServer(script=[Fail(400, "nope", "invalid_request_error", extra={"detail": 1})]) as srv:
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert resp.json()["error"]["detail"] == 1
