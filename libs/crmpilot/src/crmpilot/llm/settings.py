"""``CRMPILOT_LLM_*``: which model a service calls and within which limits.

Without an API key or a base URL the embedded local provider is the default
(``resolved_provider`` says which one runs, ``describe()`` says why; the CLI
prints it). The API key is also read from ``OPENAI_API_KEY`` and is never
printed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LLMSettings", "PriceSetting"]


class PriceSetting(BaseModel):
    """USD per one million input/output tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)


class LLMSettings(BaseSettings):
    """Settings of the shared LLM client (prefix ``CRMPILOT_LLM_``)."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_LLM_", frozen=True, extra="ignore", validate_by_name=True)

    provider: Literal["local", "openai"] | None = Field(
        default=None, description="local | openai; default: openai when an API key or base URL is set, else local"
    )
    model: str = Field(default="gpt-4o-mini", description="model of the OpenAI-compatible endpoint")
    fallback_models: tuple[str, ...] = Field(
        default=(), description="JSON list: models tried in order when the primary is down"
    )
    task_models: dict[str, str] = Field(
        default_factory=dict, description='JSON object: per-task model, e.g. {"summarize_email": "gpt-4o"}'
    )
    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:11434/v1 for Ollama; default: OpenAI")
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CRMPILOT_LLM_API_KEY", "OPENAI_API_KEY"),
        description="also OPENAI_API_KEY",
    )
    organization: str | None = None
    provider_name: str = Field(
        default="openai", description="gen_ai.provider.name on spans (openai, azure.ai.openai, vllm…)"
    )
    response_format: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    logprobs: bool = Field(
        default=True,
        description="ask for token log-probabilities and take enum and boolean fields' confidence from them "
        "(the model's own report where the endpoint sends none; a 400 about logprobs turns them off)",
    )
    max_output_tokens: int = Field(default=1024, ge=1)
    temperature: float | None = None
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    max_attempts: int = Field(default=4, ge=1, description="attempts per provider (retries + 1)")
    deadline: float = Field(default=120.0, gt=0, description="seconds for one task run, all waits included")
    max_reasks: int = Field(default=1, ge=0, description="repair requests after an invalid answer")
    max_concurrency: int = Field(default=8, ge=1)
    rpm: int | None = Field(default=None, ge=1, description="requests per minute for the whole process")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute for the whole process")
    burst_seconds: float = Field(default=10.0, gt=0, description="seconds of RPM/TPM quota that may be spent at once")
    cache: Literal["memory", "postgres", "off"] = "memory"
    cache_ttl: float | None = Field(default=None, gt=0, description="seconds; unset keeps answers until evicted")
    calibration_file: Path | None = Field(
        default=None,
        description="temperatures from `crmpilot eval calibrate`: closed fields' confidences are calibrated with "
        "the entry of their model, task, prompt version and confidence source",
    )
    cache_max_entries: int = Field(default=10_000, ge=1, description="memory cache size")
    cache_schema: str = Field(default="llm", description="PostgreSQL schema of the llm_cache table")
    database_url: SecretStr | None = Field(
        default=None, description="for cache=postgres; default: CRMPILOT_DATABASE_URL"
    )
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset: float = Field(default=30.0, gt=0)
    redact: bool = Field(default=True, description="PII redaction before any call; turn off only for synthetic data")
    prices: dict[str, PriceSetting] = Field(
        default_factory=dict, description='JSON: {"model": {"input": 0.15, "output": 0.6}}'
    )

    @property
    def resolved_provider(self) -> Literal["local", "openai"]:
        if self.provider is not None:
            return self.provider
        return "openai" if (self.api_key is not None or self.base_url) else "local"

    def describe(self) -> str:
        """One line for operators: which provider runs and why (no secrets)."""
        if self.resolved_provider == "local":
            why = (
                "configured"
                if self.provider == "local"
                else "no CRMPILOT_LLM_API_KEY/OPENAI_API_KEY or CRMPILOT_LLM_BASE_URL set"
            )
            return f"provider=local (embedded model; {why})"
        return (
            f"provider=openai model={self.model} base_url={self.base_url or 'https://api.openai.com/v1'} "
            f"cache={self.cache}"
        )
