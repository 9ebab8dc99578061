"""Liveness of one consumer-group member: is it still in its group and still polling?

A consumer can stay up while doing nothing: after a broker restart it may
never rejoin its group, and a process that only proves its event loop answers
looks healthy for ever. :class:`MembershipWatch` turns librdkafka's signals
into a verdict that ``/healthz`` serves (see :meth:`ConsumerService.status`).

The rule, while the service is supposed to consume (subscribed, not stopping):

- **not polling**: the consumer thread has not returned from a poll for
  longer than ``poll_stall_s`` (``min(max.poll.interval.ms, 60 s) +
  revoke_timeout_s``: a revoke may hold one poll that long) → not alive;
- **not a member**: the member has not been a confirmed group member for
  longer than ``member_timeout_s`` (default ``2 × session.timeout.ms``) →
  not alive. Counted from the subscription until the first membership.

A member is *confirmed* when librdkafka's group handler reports its
coordinator up and its join state steady (``cgrp.state == "up"`` and
``cgrp.join_state == "steady"`` in the statistics, every
``statistics.interval.ms``), or when an assignment arrives (``on_assign``,
called for every rebalance, even with no partitions). It stops being one on
``on_lost`` (session timed out, fenced, ``max.poll.interval.ms`` exceeded),
on ``_ALL_BROKERS_DOWN``, on ``_MAX_POLL_EXCEEDED``, or when the statistics
show another state (after a broker restart: ``query-coord`` at once, then
``init``/``wait-join`` while it rejoins).

A member without partitions (more members than partitions) is alive: it is
in its group, ready to take over. It is not *ready* (``/readyz``), and
``crmpilot_consumer_seconds_since_assignment`` grows.

Thread safety: the consumer thread writes (callbacks run inside its poll),
the event loop reads; a lock keeps each reading consistent. The clock is
injectable for tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Liveness", "MembershipWatch"]

_STEADY = ("up", "steady")


@dataclass(frozen=True, slots=True)
class Liveness:
    """The verdict and the numbers behind it (what ``/healthz`` and ``/metrics`` show)."""

    alive: bool
    reason: str
    member: bool
    since_poll_s: float | None  # None: not polling yet
    without_membership_s: float  # 0 while a member
    since_assignment_s: float  # 0 while partitions are assigned


class MembershipWatch:
    """Group membership and poll timestamps of one consumer, and the liveness rule over them."""

    def __init__(
        self,
        *,
        member_timeout_s: float,
        poll_stall_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member_timeout_s = member_timeout_s
        self.poll_stall_s = poll_stall_s
        self._clock = clock
        self._lock = threading.Lock()
        self._subscribed_at: float | None = None
        self._last_poll: float | None = None
        self._member = False
        self._member_id: str | None = None
        self._left_at: float | None = None  # when the membership was last lost (or the subscription, before any)
        self._why = "not joined yet"
        self._partitions = 0
        self._unassigned_at: float | None = None  # when the member last held no partition (None while it holds some)

    # --- signals (consumer thread) ---------------------------------------------------

    def subscribed(self) -> None:
        """The consumer subscribed: from now on it is supposed to join and consume."""
        with self._lock:
            now = self._clock()
            self._subscribed_at = self._left_at = self._unassigned_at = now

    def polled(self) -> None:
        with self._lock:
            self._last_poll = self._clock()

    def assigned(self, partitions: int) -> None:
        """``on_assign`` (incremental: ``partitions`` more; may be 0): the group just accepted this member."""
        with self._lock:
            self._join()
            self._set_partitions(self._partitions + partitions)

    def revoked(self, partitions: int) -> None:
        """``on_revoke`` (incremental): still a member, with fewer partitions."""
        with self._lock:
            self._set_partitions(max(0, self._partitions - partitions))

    def lost(self, partitions: int) -> None:
        """``on_lost``: the group took the partitions away without a hand-over: no longer a member."""
        with self._lock:
            self._set_partitions(max(0, self._partitions - partitions))
            self._leave("partitions lost (session timed out or fenced)")

    def left(self, why: str) -> None:
        """A signal that the member is out of its group for now (all brokers down, poll interval exceeded)."""
        with self._lock:
            self._leave(why)

    def group_state(self, state: str, join_state: str, member_id: str | None = None) -> None:
        """The group handler's state (``cgrp`` of the statistics): steady and up means a member."""
        with self._lock:
            if member_id is not None:
                self._member_id = member_id or None
            if (state, join_state) == _STEADY:
                self._join()
            else:
                self._leave(f"group state {state}/{join_state}")

    def statistics(self, stats_json: str) -> None:
        """librdkafka's ``stats_cb`` payload; only the ``cgrp`` part is read."""
        try:
            cgrp = json.loads(stats_json).get("cgrp")
        except ValueError:
            return
        if isinstance(cgrp, dict) and "state" in cgrp and "join_state" in cgrp:
            self.group_state(str(cgrp["state"]), str(cgrp["join_state"]))

    def member_id(self, member_id: str | None) -> None:
        """``consumer.memberid()``: shown in the reasons; empty/None once the member left."""
        with self._lock:
            self._member_id = member_id or None

    # --- the verdict (event loop) -----------------------------------------------------

    def check(self) -> Liveness:
        """Alive or not, and why, now."""
        with self._lock:
            now = self._clock()
            since_poll = None if self._last_poll is None else now - self._last_poll
            without = 0.0 if self._member or self._left_at is None else now - self._left_at
            since_assignment = 0.0 if self._unassigned_at is None else now - self._unassigned_at
            member, why, member_id = self._member, self._why, self._member_id
            subscribed = self._subscribed_at is not None
            # before the first poll, the time since the subscription counts as quiet
            start = self._last_poll if self._last_poll is not None else self._subscribed_at
            quiet = 0.0 if start is None else now - start
        if subscribed and quiet > self.poll_stall_s:
            return Liveness(
                False,
                f"consumer thread stuck: no poll for {quiet:.0f}s (limit {self.poll_stall_s:.0f}s)",
                member,
                since_poll,
                without,
                since_assignment,
            )
        if subscribed and not member and without > self.member_timeout_s:
            return Liveness(
                False,
                f"not a member of its consumer group for {without:.0f}s (limit {self.member_timeout_s:.0f}s): {why}",
                member,
                since_poll,
                without,
                since_assignment,
            )
        if not subscribed:
            reason = "not subscribed"
        elif member:
            reason = f"group member {member_id}" if member_id else "group member"
        else:
            reason = f"not a group member for {without:.0f}s: {why}"
        return Liveness(True, reason, member, since_poll, without, since_assignment)

    # --- under the lock -----------------------------------------------------------------

    def _join(self) -> None:
        self._member = True
        self._left_at = None
        self._why = ""

    def _leave(self, why: str) -> None:
        if self._member or self._left_at is None:
            self._left_at = self._clock()
        self._member = False
        self._why = why

    def _set_partitions(self, n: int) -> None:
        if n == 0 and self._partitions > 0:
            self._unassigned_at = self._clock()
        elif n > 0:
            self._unassigned_at = None
        self._partitions = n
