"""What an eval runs on: the LLM client for the chosen provider, and the task spec for the taxonomy.

The provider comes from ``CRMPILOT_LLM_*`` like a service's (``--provider`` and
``--model`` override it); the client is built by the same composition root,
:func:`~crmpilot.llm.factory.build_llm_client`, with the response cache off so
every item is really run. With the local provider, ``--head`` (or
``CRMPILOT_LLM_LOCAL_HEAD``) selects a trained head and the taxonomy defaults to
the head's labels. ``--prompt-file`` evaluates a candidate system prompt (with
a ``{categories}`` placeholder) under its own version label.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from crmpilot.evaluation.errors import EvaluationError
from crmpilot.llm.base import Prompt, TaskSpec
from crmpilot.llm.client import LLMClient
from crmpilot.llm.factory import build_llm_client
from crmpilot.llm.settings import LLMSettings
from crmpilot.tasks.classify_ticket import (
    TicketClassificationOutput,
    classify_ticket_spec,
)
from crmpilot.tasks.taxonomy import DEFAULT_CATEGORIES, Category

__all__ = ["EvalSetup", "build_eval_setup", "spec_with_prompt"]


@dataclass(frozen=True, slots=True)
class EvalSetup:
    client: LLMClient
    spec: TaskSpec[TicketClassificationOutput]
    categories: tuple[Category, ...]
    head: str | None
    """``zero-shot`` or a trained head's id with the local provider; ``None`` with a chat model."""
    describe: str


def spec_with_prompt(
    categories: tuple[Category, ...], *, prompt_file: Path | None = None, prompt_version: str | None = None
) -> TaskSpec[TicketClassificationOutput]:
    """The ``classify_ticket`` spec for ``categories``, optionally with a candidate system prompt."""
    base = classify_ticket_spec(categories)
    if prompt_file is None:
        if prompt_version is not None and prompt_version != base.prompt.version:
            raise EvaluationError(
                f"prompt version {prompt_version!r} is not in this build (it has {base.prompt.version}); "
                "pass --prompt-file to evaluate a candidate prompt under a new version"
            )
        return base
    try:
        template = prompt_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluationError(f"cannot read prompt file {prompt_file}: {exc}") from exc
    if "{categories}" not in template:
        raise EvaluationError(f"{prompt_file} must contain a {{categories}} placeholder for the category list")
    listing = "\n".join(f"- {c.name}: {c.description} [{c.queue}]" for c in categories)
    system = template.replace("{categories}", listing)
    version = prompt_version or f"{base.prompt.version}+{hashlib.sha256(template.encode()).hexdigest()[:8]}"
    prompt = Prompt(id=base.prompt.id, version=version, system=system, user_template=base.prompt.user_template)
    return replace(base, prompt=prompt)


def build_eval_setup(
    *,
    provider: Literal["local", "openai"] | None = None,
    model: str | None = None,
    head_path: Path | None = None,
    categories: tuple[Category, ...] | None = None,
    prompt_file: Path | None = None,
    prompt_version: str | None = None,
    concurrency: int = 8,
) -> EvalSetup:
    """The client and spec for an eval (no model is loaded and no request is made here)."""
    overrides: dict[str, object] = {"cache": "off", "max_concurrency": concurrency}
    if provider is not None:
        overrides["provider"] = provider
    if model is not None:
        overrides["model"] = model
    settings = LLMSettings(**overrides)  # type: ignore[arg-type]  # the overrides are checked by LLMSettings' own validation
    head: str | None = None
    if settings.resolved_provider == "local":
        from crmpilot.llm.local import LocalProvider

        local = LocalProvider(head_path=head_path)
        trained = local.head
        head = trained.id if trained is not None else "zero-shot"
        if categories is None and trained is not None:
            categories = getattr(trained, "categories", None) or None
        elif categories is not None and trained is not None:
            outside = sorted(set(trained.labels) - {c.name for c in categories})
            if outside:
                raise EvaluationError(
                    f"head {trained.id} predicts labels missing from --categories: {', '.join(outside[:10])}"
                )
        client = build_llm_client(settings, local_provider_factory=lambda: local)
        describe = f"provider=local head={head}"
    else:
        if head_path is not None:
            raise EvaluationError("--head is a local-provider option; the configured provider is openai")
        client = build_llm_client(settings)
        describe = settings.describe()
    cats = categories or DEFAULT_CATEGORIES
    spec = spec_with_prompt(cats, prompt_file=prompt_file, prompt_version=prompt_version)
    return EvalSetup(client=client, spec=spec, categories=cats, head=head, describe=describe)
