"""Composition root of the enricher: settings in, one spec's pipeline on the consumer runtime out.

Refused at start, each with the spec file and line: a spec that does not load, a
prompt version not locked (``crmpilot enrichments lock``) or edited under a locked
version, a hook or local rule that is not registered (``hook_modules`` register them), an output
the configured model cannot answer (the local model answers enum and extractive text
fields, and fields with a local rule), a trained head configured for a field the spec does not have.
"""

from __future__ import annotations

import importlib

from crmpilot.enrichments import EnrichmentHandler, EnrichmentSpec, SpecError, load_registry, task_for
from crmpilot.enrichments.hooks import LOCAL_METHODS, resolve, unknown_rules
from crmpilot.enrichments.registry import Registry, prompt_problems
from crmpilot.enrichments.results import token_model
from crmpilot.enrichments.spec import EnumOutput, SpecProblem
from crmpilot.errors import Fatal
from crmpilot.llm import LLMClient, build_llm_client
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService

from .settings import Settings


class HookModuleMissing(Fatal):
    """A module named to register hooks does not import."""


def answerable(registry: Registry, name: str, llm: LLMClient) -> None:
    """Raise :class:`SpecError` for outputs of ``name`` the client's providers cannot answer."""
    entry = registry.entry(name)
    task = task_for(entry.spec)
    problems: list[SpecProblem] = []
    for provider in llm.task_providers.get(name, llm.providers):
        heads = getattr(getattr(provider, "declared", None), "heads", {})
        for head_task, field in heads:
            if head_task == name and not isinstance(entry.spec.asked.get(field), EnumOutput):
                problems.append(
                    entry.source.problem(
                        ("outputs",),
                        f"CRMPILOT_LLM_LOCAL_HEADS names {name}.{field}, which is no enum output the model answers "
                        f"for {name}",
                    )
                )
        check = getattr(provider, "unsupported", None)
        if check is None:
            continue
        for output, why in check(task):
            problems.append(
                entry.source.problem(
                    ("outputs", output), f"{name}.{output}: the {provider.name} provider cannot answer {why}"
                )
            )
    if problems:
        raise SpecError(problems)


def handler_for(registry: Registry, name: str, llm: LLMClient, *, output_topic: str | None = None) -> EnrichmentHandler:
    entry = registry.entry(name)
    spec: EnrichmentSpec = entry.spec
    if locked := prompt_problems(entry, strict=True):
        raise SpecError(locked)
    hooks, unknown = resolve(spec.hooks)
    if unknown:
        raise SpecError(
            [entry.source.problem(("hooks",), f"hooks: no hook registered as {', '.join(map(repr, unknown))}")]
        )
    if spec.local is not None and spec.local not in LOCAL_METHODS:
        raise SpecError([entry.source.problem(("local",), f"local: no local method registered as {spec.local!r}")])
    if missing := unknown_rules(spec):
        raise SpecError(
            [
                entry.source.problem(
                    ("outputs", field, "local"),
                    f"outputs.{field}.local: no local rule registered as {spec.outputs[field].local!r}",
                )
                for field in missing
            ]
        )
    answerable(registry, name, llm)
    if output_topic:
        spec = spec.model_copy(update={"output_topic": output_topic})
    return EnrichmentHandler(spec=spec, llm=llm, token_model=token_model(llm), hooks=hooks)


def bootstrap(
    settings: Settings,
    *,
    llm: LLMClient | None = None,
    kafka: KafkaSettings | None = None,
    registry: Registry | None = None,
) -> ConsumerService:
    for module in settings.hook_modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise HookModuleMissing(f"CRMPILOT_ENRICHER_HOOK_MODULES: cannot import {module!r}: {exc}") from exc
    registry = registry or load_registry()
    client = llm or build_llm_client()
    handler = handler_for(registry, settings.enrichment, client, output_topic=settings.output_topic)
    return ConsumerService(handler, settings.runtime(handler.spec), kafka or KafkaSettings())


__all__ = ["answerable", "bootstrap", "handler_for"]
