"""Calibrated confidences: one temperature per model, task, prompt version, field and confidence source.

``crmpilot eval calibrate`` fits the temperatures on labelled closed cases and writes
them to a JSON file; the client reads the file named by ``CRMPILOT_LLM_CALIBRATION_FILE``
and turns each matching confidence ``p`` into ``sigmoid(logit(p) / T)``: ``T > 1``
tempers an over-sure model, ``T < 1`` sharpens a timid one, and which value wins never
changes. A confidence whose model, task, prompt version or source has no entry is left
as it is (a new prompt version needs its own fit).

The file::

    {"version": 1, "entries": [{"model": "gpt-4o-mini", "task": "classify_ticket",
      "prompt_version": "v3", "field": "category", "source": "logprobs", "temperature": 1.8,
      "items": 400, "ece_before": 0.21, "ece_after": 0.04, "fitted_at": "2026-12-07T10:00:00Z"}]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmpilot.errors import CrmpilotError
from crmpilot.llm.logprobs import confidence_at, with_confidences

__all__ = [
    "CalibrationEntry",
    "CalibrationFile",
    "CalibrationFileError",
    "Calibrations",
    "apply_temperature",
    "load_calibrations",
]

OutT = TypeVar("OutT", bound=BaseModel)

_EPS = 1e-6


class CalibrationFileError(CrmpilotError):
    """The calibration file cannot be read: its path and the reason."""


class CalibrationEntry(BaseModel):
    """One fitted temperature and what it was fitted on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, description="the model name the client asks for")
    task: str = Field(min_length=1)
    prompt_version: str = Field(min_length=1)
    field: str = Field(min_length=1, description="the confidence field (category, priority…)")
    source: Literal["logprobs", "self_report", "local"]
    temperature: float = Field(gt=0, le=100)
    items: int = Field(ge=1, description="labelled items the fit used")
    ece_before: float | None = Field(default=None, ge=0, le=1, description="ECE on held-out items, before")
    ece_after: float | None = Field(default=None, ge=0, le=1, description="ECE on held-out items, after")
    fitted_at: datetime

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.model, self.task, self.prompt_version, self.field, self.source)


class CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    entries: list[CalibrationEntry] = Field(default_factory=list)


def apply_temperature(p: float, temperature: float) -> float:
    """``sigmoid(logit(p) / T)``, with ``p`` kept off 0 and 1 so that the logit is finite."""
    q = min(max(p, _EPS), 1 - _EPS)
    z = math.log(q / (1 - q)) / temperature
    return 1 / (1 + math.exp(-z))


class Calibrations:
    """The temperatures of one file, looked up by model, task, prompt version, field and source."""

    def __init__(self, entries: Iterable[CalibrationEntry] = (), *, path: Path | None = None) -> None:
        self.path = path
        self._by_key = {e.key: e for e in entries}

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def entries(self) -> list[CalibrationEntry]:
        return list(self._by_key.values())

    def temperature(self, model: str, task: str, prompt_version: str, field: str, source: str) -> float | None:
        entry = self._by_key.get((model, task, prompt_version, field, source))
        return entry.temperature if entry else None

    def with_entry(self, entry: CalibrationEntry) -> Calibrations:
        """These calibrations with ``entry`` added (replacing the one with the same key)."""
        return Calibrations([*(e for e in self._by_key.values() if e.key != entry.key), entry], path=self.path)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = CalibrationFile(entries=sorted(self._by_key.values(), key=lambda e: e.key))
        path.write_text(doc.model_dump_json(indent=2) + "\n")
        return path

    def apply(
        self, output: OutT, *, model: str, task: str, prompt_version: str, source: str, paths: Mapping[str, str]
    ) -> OutT:
        """``output`` with each confidence at ``paths`` (path → field name) calibrated where an entry matches."""
        values = {
            path: apply_temperature(confidence_at(output, path), t)
            for path, field in paths.items()
            if (t := self.temperature(model, task, prompt_version, field, source)) is not None
        }
        return with_confidences(output, values) if values else output


def load_calibrations(path: Path) -> Calibrations:
    """The calibrations in ``path``; :class:`CalibrationFileError` names the file, the line and the reason."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationFileError(f"{path}: cannot read the calibration file ({exc.strerror or exc})") from exc
    try:
        doc = CalibrationFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise CalibrationFileError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CalibrationFileError(f"{path}: {where}: {first['msg']}") from exc
    return Calibrations(doc.entries, path=path)
