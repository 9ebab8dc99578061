"""Test doubles shipped beside the real adapters: an OpenAI-protocol HTTP server and a fake provider."""

from crmpilot.llm.testing.fake import FakeProvider
from crmpilot.llm.testing.server import (
    Action,
    ChatRequest,
    Fail,
    Hang,
    OpenAITestServer,
    Raw,
    Reply,
    bad_request,
    context_overflow,
    insufficient_quota,
    invalid_json,
    rate_limited,
    schema_invalid,
    server_error,
    unauthorized,
)

__all__ = [
    "FakeProvider",
    "OpenAITestServer",
    "ChatRequest",
    "Action",
    "Reply",
    "Fail",
    "Hang",
    "Raw",
    "rate_limited",
    "server_error",
    "unauthorized",
    "bad_request",
    "insufficient_quota",
    "invalid_json",
    "schema_invalid",
    "context_overflow",
]
