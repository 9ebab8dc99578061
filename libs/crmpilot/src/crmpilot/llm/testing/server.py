"""A real HTTP server speaking the OpenAI Chat Completions protocol, with scripted answers and faults.

Tests and benchmarks point the real ``openai`` SDK at it (``base_url``) to see
what the client does against latency, 429 with Retry-After, 5xx bursts, hangs,
invalid JSON, schema-violating answers, 401, missing usage, an endpoint without
``json_schema`` support. It implements ``POST /v1/chat/completions`` (non
streaming) and ``GET /v1/models``, returns OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}`` with the same status codes,
and records every request (body included) and the peak number of concurrent
requests.

Where it matters, it is as strict as a real server (llama.cpp's ``llama-server``,
which tests/realmodel runs): with ``n_ctx`` set, a prompt that does not fit is an
HTTP 400 ``exceed_context_size_error`` carrying ``n_prompt_tokens`` and ``n_ctx``
(llama.cpp's body, byte for byte in shape); an answer longer than the request's
``max_tokens`` is cut there with ``finish_reason: "length"`` (so cut-off JSON is
invalid, as it is from a real model); ``usage.prompt_tokens_details.cached_tokens``
counts the prompt prefix shared with an earlier request (a prompt cache). Asked for
``logprobs`` (and ``top_logprobs``), a :class:`Reply` with ``token_probs`` comes with
OpenAI's ``choices[].logprobs`` (``content`` items of ``token``, ``logprob``, ``bytes``,
``top_logprobs``).

Each request gets the next scripted action (:meth:`OpenAITestServer.enqueue`),
else the ``answer`` function's. Both return a :class:`Reply` (a completion), a
:class:`Fail` (an HTTP error), a :class:`Hang` (no answer) or a :class:`Raw`
body; ``answer`` may also return a plain dict / pydantic model / string as the
content.

Built on the standard library's ``ThreadingHTTPServer`` (a thread per
connection, bound to 127.0.0.1 on a free port, served from a background
thread) so that the library's test kit needs no web framework; it is a test
double, not a production server.

```python
with OpenAITestServer(lambda req: {"category": "Billing"}) as srv:
    srv.enqueue(rate_limited(retry_after=0.2), server_error(503))
    provider = OpenAIProvider(model="gpt-4o-mini", base_url=srv.base_url, api_key="test")
```
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "OpenAITestServer",
    "ChatRequest",
    "Reply",
    "Fail",
    "Hang",
    "Raw",
    "Action",
    "rate_limited",
    "server_error",
    "unauthorized",
    "bad_request",
    "insufficient_quota",
    "invalid_json",
    "schema_invalid",
    "context_overflow",
]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One request the server received (1-based ``index`` in arrival order)."""

    index: int
    model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    received_at: float = 0.0
    """``time.monotonic()`` when the request arrived."""

    @property
    def text(self) -> str:
        """All message contents, joined."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.body.get("response_format")


@dataclass(frozen=True, slots=True)
class Reply:
    """A 200 chat completion whose message content is ``content`` (dicts and models are JSON-encoded).

    ``usage``: ``"auto"`` (about 4 characters per token), ``(prompt, completion)``
    tokens, or ``None`` to omit it. ``model``: the model the response names
    (default: the requested one with a date suffix, like OpenAI's snapshots).
    """

    content: Any = ""
    usage: tuple[int, int] | Literal["auto"] | None = "auto"
    model: str | None = None
    delay: float = 0.0
    finish_reason: str = "stop"
    refusal: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token_probs: Mapping[str, float] | None = None
    """The model's token distribution, sent as OpenAI's ``logprobs`` when the request asks for them: the
    probability of each generated token equal to a key (the content is cut into tokens at word and punctuation
    boundaries: ``{"category": "Billing"}`` is ``{``, ``"``, ``category``, ``"``, ``:``, `` ``, ``"``,
    ``Billing``, ``"``, ``}``); every other token gets 0.9999. ``None``: ``logprobs: null``, as from an
    endpoint that does not support them."""


@dataclass(frozen=True, slots=True)
class Fail:
    """An HTTP error with OpenAI's error body."""

    status: int
    message: str = "error"
    type: str = "server_error"
    code: str | int | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    """More fields of the error object (llama.cpp's ``n_prompt_tokens``, ``n_ctx``)."""


@dataclass(frozen=True, slots=True)
class Hang:
    """Hold the request ``seconds`` (or until the server stops), then drop the connection without answering."""

    seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Raw:
    """Any status and body bytes (e.g. a 200 whose body is not JSON)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


Action = Reply | Fail | Hang | Raw
Answer = Callable[[ChatRequest], Any]


def rate_limited(retry_after: float | None = 0.2, *, ms: bool = False) -> Fail:
    """429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds) or ``retry-after-ms``."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers = {"retry-after-ms": str(int(retry_after * 1000))} if ms else {"retry-after": f"{retry_after:g}"}
    return Fail(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", headers=headers)


def insufficient_quota() -> Fail:
    return Fail(429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota")


def server_error(status: int = 500) -> Fail:
    return Fail(status, "The server had an error while processing your request", "server_error")


def unauthorized() -> Fail:
    return Fail(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")


def bad_request(message: str = "Invalid request", param: str | None = None, code: str | None = None) -> Fail:
    return Fail(400, message, "invalid_request_error", code, param)


def invalid_json(text: str = '{"category": "Billing", ') -> Reply:
    """A completion whose content is not JSON."""
    return Reply(text)


def context_overflow(n_prompt_tokens: int, n_ctx: int) -> Fail:
    """llama.cpp's answer to a prompt longer than a slot's context: 400 ``exceed_context_size_error``."""
    return Fail(
        400,
        f"request ({n_prompt_tokens} tokens) exceeds the available context size ({n_ctx} tokens), try increasing it",
        "exceed_context_size_error",
        400,
        extra={"n_prompt_tokens": n_prompt_tokens, "n_ctx": n_ctx},
    )


def schema_invalid(obj: Any = None) -> Reply:
    """A completion whose content is JSON but not of the expected shape."""
    return Reply({"unexpected": True} if obj is None else obj)


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_SURE = math.log(0.9999)


def _logprobs(content: str | None, probs: Mapping[str, float], body: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's ``choices[].logprobs``: ``content`` is one item per token (``token``, ``logprob``, ``bytes``,
    ``top_logprobs`` with ``top_logprobs`` alternatives when asked), ``refusal`` null."""
    top = body.get("top_logprobs")
    n_top = top if isinstance(top, int) and top > 0 else 0
    items = []
    for token in _TOKEN.findall(content or ""):
        p = probs.get(token)
        logprob = math.log(p) if p is not None else _SURE
        alternatives: list[dict[str, Any]] = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        rest = 1 - math.exp(logprob)
        for k in range(1, n_top):
            alt = f"{token}_{k}"
            alternatives.append(
                {"token": alt, "logprob": math.log(max(rest / (n_top - 1), 1e-12)), "bytes": list(alt.encode())}
            )
        alternatives.sort(key=lambda a: -float(a["logprob"]))
        items.append(
            {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": alternatives[:n_top]}
        )
    return {"content": items, "refusal": None}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


_CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD = 4
"""Tokens a chat template adds around each message (role markers), as the server counts the prompt."""


def _prompt_tokens(req: ChatRequest) -> int:
    return sum(_tokens(str(m.get("content") or "")) + _MESSAGE_OVERHEAD for m in req.messages)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: OpenAITestServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small writes must not wait for the client's delayed ACK (~40 ms a response otherwise).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: bodies may hold test PII
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "crmpilot-test"}
                for m in self.server.owner.models
            ]
            self.server.owner._send_json(self, 200, {"object": "list", "data": data})
        else:
            self.server.owner._send_error(self, Fail(404, f"Unknown path {path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/chat/completions", "/chat/completions"):
            self.server.owner._handle_chat(self, raw)
        else:
            self.server.owner._send_error(self, Fail(404, f"Unknown path {path}", "invalid_request_error", "not_found"))


class OpenAITestServer:
    """The server; use as a context manager (or ``start()``/``stop()``)."""

    def __init__(
        self,
        answer: Answer | None = None,
        *,
        script: Iterable[Action] = (),
        models: Iterable[str] = ("gpt-4o-mini", "gpt-4o"),
        latency: float = 0.0,
        supports_json_schema: bool = True,
        api_key: str | None = None,
        n_ctx: int | None = None,
        truncate_at_max_tokens: bool = True,
        prompt_cache: bool = True,
    ) -> None:
        """``n_ctx``: a slot's context in tokens (about 4 characters each); a prompt of at least that many
        is refused like llama.cpp does (None: no limit). ``truncate_at_max_tokens``: cut an answer at the
        request's ``max_tokens`` with ``finish_reason: "length"``. ``prompt_cache``: report
        ``cached_tokens`` for the prefix a prompt shares with an earlier one."""
        self.answer = answer or (lambda req: Reply("{}"))
        self.models = tuple(models)
        self.latency = latency
        self.supports_json_schema = supports_json_schema
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.truncate_at_max_tokens = truncate_at_max_tokens
        self.prompt_cache = prompt_cache
        self._prompts: deque[str] = deque(maxlen=16)
        self._script: deque[Action] = deque(script)
        self._lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._in_flight = 0
        self.max_concurrent = 0
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> OpenAITestServer:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._stop.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="openai-test-server"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases hanging requests
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting and inspection -----------------------------------------------------

    def enqueue(self, *actions: Action) -> None:
        """Actions for the next requests, in order (before ``answer`` is asked)."""
        with self._lock:
            self._script.extend(actions)

    @property
    def requests(self) -> list[ChatRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def received_bytes(self) -> bytes:
        """Every chat request body received, concatenated (to check nothing leaked)."""
        with self._lock:
            return b"\n".join(r.raw for r in self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self.max_concurrent = 0

    # --- handling ---------------------------------------------------------------------

    def _handle_chat(self, h: _Handler, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            self._send_error(h, Fail(400, "We could not parse the JSON body of your request.", "invalid_request_error"))
            return
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            req = ChatRequest(
                len(self._requests) + 1,
                str(body.get("model", "")),
                list(body.get("messages") or []),
                body,
                raw,
                headers,
                time.monotonic(),
            )
            self._requests.append(req)
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
        try:
            action = self._decide(req)
            if self.latency:
                self._stop.wait(self.latency)
            self._perform(h, req, action)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _decide(self, req: ChatRequest) -> Action:
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return unauthorized()
        if not req.model:
            return bad_request("you must provide a model parameter", "model")
        rf = req.response_format or {}
        if rf.get("type") == "json_schema" and not self.supports_json_schema:
            return bad_request("response_format json_schema is not supported by this model", "response_format")
        if self.n_ctx is not None and (n := _prompt_tokens(req)) >= self.n_ctx:
            return context_overflow(n, self.n_ctx)
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        result = self.answer(req)
        if isinstance(result, Reply | Fail | Hang | Raw):
            return result
        return Reply(result)

    def _perform(self, h: _Handler, req: ChatRequest, action: Action) -> None:
        if isinstance(action, Hang):
            self._stop.wait(action.seconds)
            h.close_connection = True
            return
        if isinstance(action, Raw):
            self._send(h, action.status, action.body, action.content_type, {})
            return
        if isinstance(action, Fail):
            if action.delay:
                self._stop.wait(action.delay)
            self._send_error(h, action)
            return
        if action.delay:
            self._stop.wait(action.delay)
        content = action.content
        if isinstance(content, BaseModel):
            content = content.model_dump_json()
        elif not isinstance(content, str):
            content = json.dumps(content)
        finish_reason = action.finish_reason
        limit = req.body.get("max_completion_tokens") or req.body.get("max_tokens")
        cut_at: int | None = None
        if (
            self.truncate_at_max_tokens
            and content
            and not action.refusal
            and isinstance(limit, int)
            and limit > 0
            and _tokens(content) > limit
        ):
            content = content[: limit * _CHARS_PER_TOKEN]  # generation stops at the limit, mid-JSON or not
            finish_reason = "length"
            cut_at = limit
        completion: dict[str, Any] = {
            "id": f"chatcmpl-test-{req.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": action.model or f"{req.model}-2025-01-01",
            "system_fingerprint": "fp_crmpilot_test",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None if action.refusal else content,
                        "refusal": action.refusal,
                    },
                    "finish_reason": finish_reason,
                    "logprobs": (
                        _logprobs(content, action.token_probs, req.body)
                        if req.body.get("logprobs") and action.token_probs is not None
                        else None
                    ),
                }
            ],
        }
        if action.usage is not None:
            if action.usage == "auto":
                tin, tout = _tokens(req.text), _tokens(content)
            else:
                tin, tout = action.usage
            if cut_at is not None:
                tout = min(tout, int(cut_at))
            completion["usage"] = {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}
            if self.prompt_cache:
                completion["usage"]["prompt_tokens_details"] = {"cached_tokens": min(tin, self._cached(req))}
        self._send_json(h, 200, completion, action.headers)

    def _cached(self, req: ChatRequest) -> int:
        """Tokens of this prompt's longest prefix shared with one of the last prompts (whole tokens only)."""
        text = req.text
        with self._lock:
            best = max((_common_prefix(text, p) for p in self._prompts), default=0)
            self._prompts.append(text)
        return best // _CHARS_PER_TOKEN

    def _send_error(self, h: _Handler, fail: Fail) -> None:
        error = {"message": fail.message, "type": fail.type, "param": fail.param, "code": fail.code, **fail.extra}
        body = {"error": error}
        self._send_json(h, fail.status, body, fail.headers)

    def _send_json(self, h: _Handler, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(h, status, json.dumps(obj).encode(), "application/json", headers or {})

    @staticmethod
    def _send(h: _Handler, status: int, data: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        try:
            h.send_response(status)
            h.send_header("content-type", content_type)
            h.send_header("content-length", str(len(data)))
            h.send_header("x-request-id", f"req_test_{time.monotonic_ns()}")
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client gave up (timeout); nothing to tell it
