"""The prompt registry: every shipped prompt version and its content hash, locked.

``prompts.lock.json`` (beside this module) records, for each prompt id, every
version ever shipped with the hash of its text. A prompt whose text changed
while its version stayed the same is refused (a test runs :func:`check`), so a
result's ``prompt_version`` always names exactly one prompt text, and the
warehouse can compare quality across versions honestly. ``crmpilot prompts
lock`` records a new version; it never rewrites the hash of an existing one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from crmpilot.llm.base import TaskSpec

__all__ = ["SHIPPED", "PromptDrift", "lock_path", "locked", "check", "lock"]

LOCK_FILE = "prompts.lock.json"


def _shipped() -> tuple[TaskSpec[Any], ...]:
    from .classify_ticket import CLASSIFY_TICKET
    from .summarize_email import SUMMARIZE_EMAIL

    return (CLASSIFY_TICKET, SUMMARIZE_EMAIL)


SHIPPED = _shipped


@dataclass(frozen=True, slots=True)
class PromptDrift:
    prompt_id: str
    version: str
    locked_hash: str | None
    current_hash: str

    def __str__(self) -> str:
        if self.locked_hash is None:
            return f"{self.prompt_id} {self.version}: not in the registry (run `crmpilot prompts lock`)"
        return (
            f"{self.prompt_id} {self.version}: text changed (locked {self.locked_hash}, now {self.current_hash}); "
            "bump the prompt's version, then run `crmpilot prompts lock`"
        )


def lock_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(LOCK_FILE)))


def locked(path: Path | None = None) -> dict[str, dict[str, str]]:
    p = path or lock_path()
    return json.loads(p.read_text()) if p.exists() else {}


def check(specs: tuple[TaskSpec[Any], ...] | None = None, path: Path | None = None) -> list[PromptDrift]:
    """Prompts whose (id, version) is unknown to the registry or whose text changed under the same version."""
    registry = locked(path)
    drift = []
    for spec in specs or SHIPPED():
        p = spec.prompt
        known = registry.get(p.id, {}).get(p.version)
        if known != p.hash:
            drift.append(PromptDrift(p.id, p.version, known, p.hash))
    return drift


def lock(specs: tuple[TaskSpec[Any], ...] | None = None, path: Path | None = None) -> list[str]:
    """Record new prompt versions; refuses (``ValueError``) to change the hash of a locked version."""
    p_path = path or lock_path()
    registry = locked(p_path)
    added = []
    for drift in check(specs, p_path):
        if drift.locked_hash is not None:
            raise ValueError(str(drift))
        registry.setdefault(drift.prompt_id, {})[drift.version] = drift.current_hash
        added.append(f"{drift.prompt_id} {drift.version} {drift.current_hash}")
    p_path.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return added
