"""A prompt's text never changes under the same version: the registry refuses it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crmpilot.llm.base import TaskSpec
from crmpilot.tasks import CLASSIFY_TICKET, TicketClassificationOutput, registry


def test_every_shipped_prompt_matches_its_locked_version() -> None:
    assert [str(d) for d in registry.check()] == [], "bump the prompt version and run `crmpilot prompts lock`"


def _edited(version: str) -> TaskSpec[TicketClassificationOutput]:
    prompt = dataclasses.replace(
        CLASSIFY_TICKET.prompt, system=CLASSIFY_TICKET.prompt.system + "\nBe brief.", version=version
    )
    return dataclasses.replace(CLASSIFY_TICKET, prompt=prompt)


def test_an_edit_without_a_version_bump_is_drift_and_cannot_be_locked(tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock.json"
    registry.lock((CLASSIFY_TICKET,), lock)
    edited = _edited(CLASSIFY_TICKET.prompt.version)
    [drift] = registry.check((edited,), lock)
    assert "text changed" in str(drift) and "bump" in str(drift)
    with pytest.raises(ValueError, match="bump the prompt's version"):
        registry.lock((edited,), lock)


def test_a_bumped_version_is_locked_beside_the_old_one(tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock.json"
    registry.lock((CLASSIFY_TICKET,), lock)
    bumped = _edited("2099-01-01.1")
    assert registry.lock((bumped,), lock) == [f"classify_ticket 2099-01-01.1 {bumped.prompt.hash}"]
    versions = registry.locked(lock)["classify_ticket"]
    assert set(versions) == {CLASSIFY_TICKET.prompt.version, "2099-01-01.1"}
    assert registry.check((CLASSIFY_TICKET, bumped), lock) == []
