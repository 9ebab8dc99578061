"""The root of crmpilot's error tree and the two traits the runtime acts on.

Each package defines its own errors (``crmpilot.events.errors``,
``crmpilot.llm.errors``, ``crmpilot.crm.errors``…) under :class:`CrmpilotError`.
The consumer runtime decides what to do from the traits alone:

- :class:`Retryable`: a transient fault; retry with backoff, bounded, then dead-letter.
- :class:`Fatal`: the service cannot go on (bad credentials, missing table); stop loudly.
- :class:`Permanent`: this record can never succeed, however often it is tried (the
  event is malformed, the endpoint rejects the request itself, the prompt does not
  fit): dead-letter at once. :class:`crmpilot.events.PoisonMessage`
  is the events package's kind of it.
"""

from __future__ import annotations

__all__ = ["CrmpilotError", "Retryable", "Fatal", "Permanent"]


class CrmpilotError(Exception):
    """Base of every error crmpilot raises on purpose."""


class Retryable(CrmpilotError):
    """A transient failure: the same work may succeed later.

    ``retry_after`` (seconds), when known, is the earliest sensible retry.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Fatal(CrmpilotError):
    """A failure no retry can fix inside this process; the service must stop."""


class Permanent(CrmpilotError):
    """This record's failure is final: retrying the same input gives the same error.

    The runtime dead-letters it at once instead of spending ``max_attempts`` on it.
    """
