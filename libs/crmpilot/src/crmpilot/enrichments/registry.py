"""The registry: every enrichment spec of the deployment, loaded and checked once, looked up by name or topic.

Specs live in the folder ``CRMPILOT_ENRICHMENTS_DIR`` names (several folders
separated by ``:``), one ``*.yaml`` file each, beside the built-in ones shipped in
``crmpilot/tasks/specs`` (``score_request``; ``CRMPILOT_ENRICHMENTS_BUILTIN=false``
leaves them out). Beside them, ``enrichments.lock.json``
records the hash of every prompt version ever shipped: a prompt whose text (or
answer format: values, descriptions, bounds) changed under a locked version is
refused with the line of its ``prompt.version``; ``crmpilot enrichments lock``
records a new version and never rewrites a locked one.

Every downstream list reads this registry: the enricher's spec, crm_writer's
targets, warehouse_writer's topics and the ``bi.<name>`` views, ``crmpilot topics
apply``, the CRM sandbox's objects and fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.errors import Fatal

from .spec import EnrichmentSpec, SpecError, SpecProblem, SpecSource, load_spec
from .task import task_for

__all__ = [
    "LOCK_FILE",
    "builtin_folder",
    "EnrichmentsSettings",
    "LoadedSpec",
    "Registry",
    "UnknownEnrichment",
    "load_registry",
    "lock_prompts",
    "prompt_problems",
]

LOCK_FILE = "enrichments.lock.json"


class UnknownEnrichment(Fatal):
    """No spec of that name is registered."""


class EnrichmentsSettings(BaseSettings):
    """Where the deployment's enrichment specs are (``CRMPILOT_ENRICHMENTS_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_ENRICHMENTS_", frozen=True, extra="ignore")

    dir: str = Field(default="", description="folders of enrichment spec files (*.yaml), separated by ':'; empty: none")
    builtin: bool = Field(default=True, description="load the built-in specs (score_request) too")

    def folders(self) -> tuple[Path, ...]:
        return tuple(Path(p) for p in self.dir.split(":") if p.strip())


@dataclass(frozen=True, slots=True)
class LoadedSpec:
    spec: EnrichmentSpec
    source: SpecSource
    path: Path

    @property
    def lock_path(self) -> Path:
        return self.path.parent / LOCK_FILE

    @property
    def builtin(self) -> bool:
        """Shipped with crmpilot (``crmpilot/tasks/specs``), not one of the deployment's folders."""
        return self.path.resolve().parent == builtin_folder().resolve()


@dataclass(frozen=True, slots=True)
class Registry:
    """The loaded specs, by name."""

    entries: dict[str, LoadedSpec] = field(default_factory=dict)

    def __iter__(self) -> Iterator[EnrichmentSpec]:
        return (e.spec for e in self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> EnrichmentSpec:
        return self.entry(name).spec

    def entry(self, name: str) -> LoadedSpec:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none (set CRMPILOT_ENRICHMENTS_DIR to a folder of spec files)"
            raise UnknownEnrichment(f"no enrichment {name!r}; registered: {known}") from None

    def for_result(self, task: str) -> EnrichmentSpec | None:
        entry = self.entries.get(task)
        return None if entry is None else entry.spec

    @property
    def output_topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.topic for s in self))

    @property
    def source_topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for s in self for t in s.source.topics))


def spec_files(folders: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise SpecError([SpecProblem(str(folder), 1, "CRMPILOT_ENRICHMENTS_DIR names no folder")])
        files += sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    return files


def builtin_folder() -> Path:
    """The folder of the built-in specs, their hooks and local methods registered."""
    from crmpilot.tasks import BUILTIN_SPECS, score_request  # noqa: F401 - registers the built-ins' hooks

    return BUILTIN_SPECS


def load_registry(
    folders: Sequence[Path] | None = None, *, files: Sequence[Path] = (), builtin: bool | None = None
) -> Registry:
    """Every spec of the built-in folder (unless ``builtin`` is false; default: ``CRMPILOT_ENRICHMENTS_BUILTIN``),
    of ``folders`` (default: ``CRMPILOT_ENRICHMENTS_DIR``) and ``files``, checked; raises :class:`SpecError` with
    every problem."""
    settings = EnrichmentsSettings()
    folder = builtin_folder()  # registers the built-ins' hooks and local methods even when their specs are left out
    shipped = (folder,) if (settings.builtin if builtin is None else builtin) else ()
    paths = [*spec_files((*shipped, *(settings.folders() if folders is None else folders))), *files]
    entries: dict[str, LoadedSpec] = {}
    problems: list[SpecProblem] = []
    for path in paths:
        try:
            spec, source = load_spec(path)
        except SpecError as exc:
            problems += exc.problems
            continue
        loaded = LoadedSpec(spec, source, path)
        if spec.name in entries:
            problems.append(
                source.problem(("name",), f"name {spec.name!r} is also declared in {entries[spec.name].path}")
            )
            continue
        try:
            task_for(spec)
        except Exception as exc:  # noqa: BLE001 - anything the task builder refuses is this file's problem, reported with it
            problems.append(source.problem((), f"the spec does not make a task: {type(exc).__name__}: {exc}"[:500]))
            continue
        problems += prompt_problems(loaded, strict=False)
        entries[spec.name] = loaded
    problems += _field_clashes(entries)
    topics: dict[str, str] = {}
    for e in entries.values():
        other = topics.setdefault(e.spec.topic, e.spec.name)
        if other != e.spec.name:
            problems.append(e.source.problem(("output_topic",), f"output topic {e.spec.topic} is also {other}'s"))
    if problems:
        raise SpecError(problems)
    return Registry(entries)


def _field_clashes(entries: dict[str, LoadedSpec]) -> list[SpecProblem]:
    """CRM fields two specs write on one object, or a spec writes a built-in task's field: one would overwrite the
    other."""
    from crmpilot.crm.mapping import MANAGED_FIELDS  # the built-in tasks' fields

    owner: dict[tuple[str, str], str] = {
        (obj.lower(), f.lower()): "the built-in tasks" for obj, fields in MANAGED_FIELDS.items() for f in fields
    }
    problems: list[SpecProblem] = []
    for e in entries.values():
        crm = e.spec.crm
        if crm is None:
            continue
        for f in crm.written_fields:
            key = (crm.object.lower(), f.lower())
            other = owner.setdefault(key, e.spec.name)
            if other != e.spec.name:
                problems.append(
                    e.source.problem(
                        ("crm",),
                        f"crm: {crm.object}.{f} is also written by {other}: give this enrichment fields of its own",
                    )
                )
    return problems


def _locked(path: Path) -> dict[str, dict[str, str]]:
    try:
        locked = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError([SpecProblem(str(path), 1, f"unreadable prompt lock: {exc}")]) from exc
    if not isinstance(locked, dict) or not all(isinstance(v, dict) for v in locked.values()):
        raise SpecError([SpecProblem(str(path), 1, "a prompt lock is an object: enrichment -> {prompt version: hash}")])
    return locked


def prompt_problems(entry: LoadedSpec, *, strict: bool) -> list[SpecProblem]:
    """A prompt changed under a locked version (always), or a version not locked yet (``strict``: ``crmpilot
    enrichments check``)."""
    spec = entry.spec
    current = task_for(spec).prompt.hash
    known = _locked(entry.lock_path).get(spec.name, {}).get(spec.prompt.version)
    where = ("prompt", "version")
    if known is None:
        if not strict:
            return []
        return [
            entry.source.problem(
                where, f"prompt version {spec.prompt.version!r} is not locked: run `crmpilot enrichments lock`"
            )
        ]
    if known != current:
        return [
            entry.source.problem(
                where,
                f"the prompt (text or answer format) changed under version {spec.prompt.version!r} "
                f"(locked {known}, now {current}): give prompt.version a new value, then run `crmpilot "
                "enrichments lock`",
            )
        ]
    return []


def lock_prompts(registry: Registry) -> list[str]:
    """Record every unlocked prompt version in its folder's lock file; returns what was added."""
    added: list[str] = []
    for entry in registry.entries.values():
        spec = entry.spec
        locked = _locked(entry.lock_path)
        versions = locked.setdefault(spec.name, {})
        if spec.prompt.version in versions:
            continue
        versions[spec.prompt.version] = task_for(spec).prompt.hash
        entry.lock_path.write_text(json.dumps(locked, indent=2, sort_keys=True) + "\n")
        added.append(f"{spec.name} {spec.prompt.version} {versions[spec.prompt.version]}")
    return added
