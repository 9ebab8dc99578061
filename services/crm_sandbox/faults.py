"""Faults a test or chaos run can switch on through `POST /__sandbox/faults`.

- `limit_exceeded`: every API call answers 403 REQUEST_LIMIT_EXCEEDED.
- `lock_row_errors: N`: the next N record writes fail with UNABLE_TO_LOCK_ROW.
- `expire_sessions`: true expires every session: issued OAuth tokens are revoked
  (a new login works) and the configured tokens answer 401 INVALID_SESSION_ID
  until it is set back to false.
- `latency_ms`: every API call waits this long before it is handled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultPlan", "Faults"]


class FaultPlan(BaseModel):
    """A change to the faults; fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit_exceeded: bool | None = None
    lock_row_errors: int | None = Field(None, ge=0)
    expire_sessions: bool | None = None
    latency_ms: int | None = Field(None, ge=0, le=60_000)


@dataclass
class Faults:
    """The faults in force in this server process."""

    limit_exceeded: bool = False
    lock_row_errors: int = 0
    expire_sessions: bool = False
    latency_ms: int = 0

    def apply(self, plan: FaultPlan) -> None:
        for name, value in plan.model_dump(exclude_none=True).items():
            setattr(self, name, value)

    def clear(self) -> None:
        self.apply(FaultPlan(limit_exceeded=False, lock_row_errors=0, expire_sessions=False, latency_ms=0))

    def take_lock_error(self) -> bool:
        """Whether this record write should fail to lock its row (uses one up)."""
        if self.lock_row_errors <= 0:
            return False
        self.lock_row_errors -= 1
        return True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
