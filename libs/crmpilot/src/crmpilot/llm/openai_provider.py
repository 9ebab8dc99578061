"""The OpenAI-compatible provider: one chat completion per task, on the official ``openai`` SDK.

Works with any endpoint speaking the Chat Completions protocol (OpenAI, Azure
OpenAI's v1 endpoint, vLLM, Ollama, llama.cpp server) through ``base_url``.
The SDK's own retries are off: :class:`~crmpilot.llm.client.LLMClient` retries,
so that limits, the breaker and the trace see every attempt.

Structured output: the request carries ``response_format`` with the output
model's JSON schema (strict when the schema allows it: closed objects, no free
dicts). With ``response_format="auto"`` an endpoint that rejects
``json_schema`` (HTTP 400 naming ``response_format``) is asked again with
``json_object`` and then with no format at all, the schema being in the system
message in both cases; the downgrade sticks for this provider instance. The
answer is validated with pydantic; an invalid one gets ``max_reasks`` repair
requests that feed the validation errors back, then
:class:`~crmpilot.llm.errors.LLMInvalidOutput`.

SDK exceptions are translated here, at the edge, into ``crmpilot.llm.errors``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, SecretStr, ValidationError

from crmpilot.llm.base import Completion, ConfidenceSource, TaskSpec, Usage
from crmpilot.llm.errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMConfigError,
    LLMContextOverflow,
    LLMError,
    LLMInvalidOutput,
    LLMQuotaExceeded,
    LLMRateLimited,
    LLMRefused,
    LLMTimeout,
    LLMUnavailable,
)
from crmpilot.llm.logprobs import token_logprobs, value_probabilities, with_logprob_confidence
from crmpilot.llm.retry import parse_retry_after
from crmpilot.llm.tokens import estimate_tokens

__all__ = ["OpenAIProvider", "ResponseFormatMode", "response_format_for", "translate_openai_error"]

OutT = TypeVar("OutT", bound=BaseModel)

ResponseFormatMode = Literal["auto", "json_schema", "json_object", "none"]
_DOWNGRADE: dict[str, str] = {"json_schema": "json_object", "json_object": "none"}
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_ERRORS_FED_BACK = 10
_MAX_ECHO_CHARS = 2000
"""A re-ask repeats at most this much of the invalid answer (a cut-off one can be max_tokens long)."""
_OVERFLOW_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded"})
_OVERFLOW_TEXT = re.compile(
    r"maximum context length|context length exceeded|exceeds? the (?:available )?context size"
    r"|context window|too many tokens in the prompt",
    re.IGNORECASE,
)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _is_context_overflow(exc: openai.APIStatusError) -> bool:
    """Whether a 400 says the prompt does not fit the context (llama.cpp, OpenAI, vLLM wordings)."""
    if exc.type in _OVERFLOW_TYPES or exc.code in _OVERFLOW_TYPES:
        return True
    return bool(_OVERFLOW_TEXT.search(_message(exc)))


def _message(exc: openai.APIError) -> str:
    body = exc.body
    text: str
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]  # the server's own words, without the SDK's "Error code: …" dump
    else:
        text = exc.message if isinstance(exc.message, str) else str(exc)
    return text[:300]


def translate_openai_error(exc: openai.OpenAIError, *, provider: str = "openai", model: str | None = None) -> LLMError:
    """The crmpilot error for an SDK exception (raise it ``from exc``)."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout("the model endpoint timed out", **kw)
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(f"cannot reach the model endpoint: {_message(exc)}", **kw)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        kw["status_code"] = status
        retry_after = parse_retry_after(exc.response.headers)
        text = f"HTTP {status} {exc.type or ''}: {_message(exc)}".replace("  ", " ")
        if status == 429:
            if exc.code == "insufficient_quota" or exc.type == "insufficient_quota":
                return LLMQuotaExceeded(text, **kw)
            return LLMRateLimited(text, retry_after=retry_after, **kw)
        if status in (401, 403):
            return LLMAuthError(text, **kw)
        if status == 404:
            return LLMConfigError(text, **kw)
        if status >= 500 or status in (408, 409):
            return LLMUnavailable(text, retry_after=retry_after, **kw)
        api_code = None if exc.code is None else str(exc.code)
        if status in (400, 413, 422) and _is_context_overflow(exc):
            body = exc.body if isinstance(exc.body, dict) else {}
            return LLMContextOverflow(
                text,
                n_prompt_tokens=_int_or_none(body.get("n_prompt_tokens")),
                n_ctx=_int_or_none(body.get("n_ctx")),
                param=exc.param,
                api_code=api_code,
                **kw,
            )
        return LLMBadRequest(text, param=exc.param, api_code=api_code, **kw)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMUnavailable("the endpoint's response did not follow the protocol", **kw)
    return LLMUnavailable(f"{type(exc).__name__}: {str(exc)[:300]}", **kw)


def _strict_ok(schema: Any) -> bool:
    """Whether a schema fits OpenAI's strict mode (every object closed, no free-form maps)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            return False
        if "patternProperties" in schema:
            return False
        return all(_strict_ok(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_ok(v) for v in schema)
    return True


@functools.cache
def response_format_for(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """A ``json_schema`` response format for ``model``: strict when the schema allows it."""
    from openai.lib._pydantic import (
        to_strict_json_schema,  # the SDK's own strict-schema transform
    )

    safe_name = _NAME_OK.sub("_", name)[:64] or "output"
    try:
        schema = to_strict_json_schema(model)
        strict = _strict_ok(schema)
    except (TypeError, ValueError):
        strict = False
    if not strict:
        schema = model.model_json_schema()
    return {"type": "json_schema", "json_schema": {"name": safe_name, "schema": schema, "strict": strict}}


def _format_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for err in errors[:_MAX_ERRORS_FED_BACK]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        lines.append(f"- {loc}: {err.get('msg', 'invalid')}")
    if len(errors) > _MAX_ERRORS_FED_BACK:
        lines.append(f"- … and {len(errors) - _MAX_ERRORS_FED_BACK} more")
    return "\n".join(lines)


class OpenAIProvider:
    """A :class:`~crmpilot.llm.base.Provider` on ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        organization: str | None = None,
        timeout: float = 30.0,
        max_reasks: int = 1,
        response_format: ResponseFormatMode = "auto",
        max_output_tokens: int | None = 1024,
        temperature: float | None = None,
        provider_name: str = "openai",
        default_headers: Mapping[str, str] | None = None,
        client: openai.AsyncOpenAI | None = None,
        logprobs: bool = True,
    ) -> None:
        self.name = provider_name
        self.logprobs = logprobs
        self.model = model
        self.max_reasks = max_reasks
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self._auto = response_format == "auto"
        self.response_format: str = "json_schema" if self._auto else response_format
        if client is None:
            key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
            if not key and not os.environ.get("OPENAI_API_KEY"):
                key = "no-key"  # local servers (Ollama, vLLM) take none; the SDK insists on one
            client = openai.AsyncOpenAI(
                api_key=key or None,
                organization=organization,
                base_url=base_url,
                timeout=timeout,
                max_retries=0,
                default_headers=dict(default_headers) if default_headers else None,
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        url = client.base_url
        self.server_address: str | None = url.host or None
        self.server_port: int | None = url.port or (443 if url.scheme == "https" else 80)
        official = self.server_address == "api.openai.com"
        self._max_tokens_param = "max_completion_tokens" if official else "max_tokens"

    def with_model(self, model: str) -> OpenAIProvider:
        """The same endpoint and connection pool, another model (per-task models, fallbacks)."""
        clone = copy.copy(self)
        clone.model = model
        clone._owns_client = False
        return clone

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def list_models(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``): a cheap connectivity check."""
        try:
            page = await self._client.models.list()
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, provider=self.name, model=self.model) from exc
        return [m.id for m in page.data]

    # --- the call -------------------------------------------------------------------

    def _messages(self, spec: TaskSpec[Any], payload: Mapping[str, Any], mode: str) -> list[dict[str, str]]:
        system = spec.prompt.system
        if mode != "json_schema":
            schema = json.dumps(spec.output_model.model_json_schema(), ensure_ascii=False)
            system = f"{system}\n\nRespond with only a JSON object that conforms to this JSON Schema:\n{schema}"
        return [{"role": "system", "content": system}, {"role": "user", "content": spec.prompt.render_user(payload)}]

    async def _create(self, spec: TaskSpec[Any], messages: list[dict[str, str]]) -> Any:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.max_output_tokens:
            kwargs[self._max_tokens_param] = self.max_output_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.logprobs and spec.logprob_confidence:
            kwargs["logprobs"] = True
        if self.response_format == "json_schema":
            output_model: type[BaseModel] = spec.output_model
            kwargs["response_format"] = response_format_for(spec.name, output_model)
        elif self.response_format == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        try:
            # The SDK's own POST of ``chat.completions.create`` (same client, auth, timeouts,
            # errors and ChatCompletion parsing), minus its type-driven transform of the body:
            # for plain JSON like ours it changes nothing, and walking the strict schema and
            # the message unions on every request was a third of the client's CPU per call.
            return await self._client.post("/chat/completions", cast_to=ChatCompletion, body=kwargs)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, provider=self.name, model=self.model) from exc

    def _logprobs_rejected(self, exc: LLMError) -> bool:
        """A 400 about ``logprobs`` (reasoning models, some gateways): ask without them from now on."""
        if not (self.logprobs and isinstance(exc, LLMBadRequest)):
            return False
        return exc.param == "logprobs" or "logprobs" in str(exc).lower()

    def _format_rejected(self, exc: LLMError) -> bool:
        if not (self._auto and isinstance(exc, LLMBadRequest) and self.response_format in _DOWNGRADE):
            return False
        text = str(exc).lower()
        return exc.param == "response_format" or "response_format" in text or "json_schema" in text

    async def complete(self, spec: TaskSpec[OutT], payload: Mapping[str, Any]) -> Completion[OutT]:
        messages = self._messages(spec, payload, self.response_format)
        usage = Usage()
        estimated = False
        finish: list[str] = []
        errors: list[dict[str, Any]] = []
        asks = 0
        cached = 0
        while True:
            try:
                resp = await self._create(spec, messages)
            except LLMError as exc:
                if self._logprobs_rejected(exc):
                    self.logprobs = False
                    usage = usage + Usage(requests=1)
                    continue
                if self._format_rejected(exc):
                    self.response_format = _DOWNGRADE[self.response_format]
                    messages = self._messages(spec, payload, self.response_format) + messages[2:]
                    usage = usage + Usage(requests=1)
                    continue
                exc.usage = usage + Usage(requests=1)
                exc.attempts = usage.requests + 1
                raise
            asks += 1
            tin, tout, est = self._usage(resp, messages)
            cached += _cached_tokens(resp)
            estimated = estimated or est
            usage = usage + Usage(tokens_in=tin, tokens_out=tout, requests=1)
            choice = resp.choices[0] if resp.choices else None
            if choice is None:
                raise LLMUnavailable(
                    "the endpoint returned no choices",
                    usage=usage,
                    attempts=usage.requests,
                    provider=self.name,
                    model=self.model,
                )
            finish.append(str(choice.finish_reason))
            message = choice.message
            if getattr(message, "refusal", None) or choice.finish_reason == "content_filter":
                raise LLMRefused(
                    "the model refused to answer",
                    usage=usage,
                    attempts=usage.requests,
                    provider=self.name,
                    model=self.model,
                )
            content = message.content or ""
            fenced = _FENCE.match(content)
            try:
                output = spec.output_model.model_validate_json(fenced.group(1) if fenced else content)
            except ValidationError as exc:
                errors = [dict(e) for e in exc.errors(include_input=False, include_url=False, include_context=False)]
                if asks > self.max_reasks:
                    raise LLMInvalidOutput(
                        f"the answer failed validation after {asks} request(s): {_format_errors(errors)}",
                        errors=errors,
                        usage=usage,
                        attempts=usage.requests,
                        provider=self.name,
                        model=self.model,
                    ) from None
                cut = " (it was cut off at the token limit)" if choice.finish_reason == "length" else ""
                echo = content if len(content) <= _MAX_ECHO_CHARS else content[:_MAX_ECHO_CHARS] + " …"
                messages = [
                    *messages,
                    {"role": "assistant", "content": echo},
                    {
                        "role": "user",
                        "content": f"Your answer was not valid{cut}:\n{_format_errors(errors)}\n"
                        "Answer again with only a JSON object that matches the schema.",
                    },
                ]
                continue
            output, source = _confidence(spec, output, content, choice)
            return Completion(
                output=output,
                model=self.model,
                tokens_in=usage.tokens_in,
                tokens_out=usage.tokens_out,
                model_version=resp.model or None,
                response_id=resp.id or None,
                extra=_extra(resp, self.response_format, cached),
                confidence_source=source,
                requests=usage.requests,
                finish_reasons=tuple(finish),
                usage_estimated=estimated,
            )

    def _usage(self, resp: Any, messages: list[dict[str, str]]) -> tuple[int, int, bool]:
        """Prompt and completion tokens as the endpoint counted them, else estimated (third value True)."""
        u = resp.usage
        if u is not None and (u.prompt_tokens or u.completion_tokens):
            return int(u.prompt_tokens or 0), int(u.completion_tokens or 0), False
        prompt = sum(estimate_tokens(m["content"], self.model) + 4 for m in messages)
        answer = "".join((c.message.content or "") for c in resp.choices) if resp.choices else ""
        return prompt, estimate_tokens(answer, self.model), True


def _confidence(spec: TaskSpec[OutT], output: OutT, content: str, choice: Any) -> tuple[OutT, ConfidenceSource]:
    """The output with its closed fields' confidences from the answer's token log-probabilities, when the
    endpoint sent them and they spell the answer; else as the model reported them."""
    mapping = dict(spec.logprob_confidence)
    if mapping:
        probabilities = value_probabilities(content, token_logprobs(choice), list(mapping.values()))
        measured = with_logprob_confidence(output, mapping, probabilities)
        if measured is not None:
            return measured, "logprobs"
    return output, "self_report"


def _cached_tokens(resp: Any) -> int:
    """``usage.prompt_tokens_details.cached_tokens``: prompt tokens the server read from its prompt cache."""
    details = getattr(resp.usage, "prompt_tokens_details", None) if resp.usage is not None else None
    return _int_or_none(getattr(details, "cached_tokens", None)) or 0


def _extra(resp: Any, response_format: str, cached: int) -> dict[str, Any]:
    """Provenance a completion carries beyond tokens: fingerprint, format, cached prompt tokens, server timings."""
    extra: dict[str, Any] = {
        "system_fingerprint": resp.system_fingerprint,
        "response_format": response_format,
        "tokens_cached": cached,
    }
    timings = (resp.model_extra or {}).get("timings")  # llama.cpp: prompt and generation rates of the last request
    if isinstance(timings, dict):
        keep: tuple[str, ...] = (
            "prompt_n",
            "prompt_ms",
            "prompt_per_second",
            "predicted_n",
            "predicted_ms",
            "predicted_per_second",
        )
        keep += ("cache_n",)
        extra["timings"] = {k: timings[k] for k in keep if isinstance(timings.get(k), int | float)}
    return extra
