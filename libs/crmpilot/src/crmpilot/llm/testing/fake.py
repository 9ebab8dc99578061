"""A scripted in-process provider: the fake beside the real ones, for handler unit tests without HTTP."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from crmpilot.llm.base import Completion, TaskSpec
from crmpilot.llm.errors import LLMError

__all__ = ["FakeProvider"]

OutT = TypeVar("OutT", bound=BaseModel)


class FakeProvider:
    """Answers from a script (outputs as models or dicts, or ``LLMError`` instances to raise), else ``answer``.

    Records every ``(task name, payload)`` it was called with in ``calls``.
    """

    def __init__(
        self,
        answer: Callable[[TaskSpec[Any], Mapping[str, Any]], Any] | None = None,
        *,
        script: Iterable[Any] = (),
        name: str = "fake",
        model: str = "fake-model",
        tokens: tuple[int, int] = (10, 5),
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.model = model
        self.answer = answer
        self.tokens = tokens
        self.delay = delay
        self._script: deque[Any] = deque(script)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, *items: Any) -> None:
        self._script.extend(items)

    async def complete(self, spec: TaskSpec[OutT], payload: Mapping[str, Any]) -> Completion[OutT]:
        self.calls.append((spec.name, dict(payload)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._script:
            item = self._script.popleft()
        elif self.answer is not None:
            item = self.answer(spec, payload)
        else:
            raise AssertionError(f"FakeProvider has no answer for task {spec.name}")
        if isinstance(item, LLMError):
            raise item
        output = item if isinstance(item, spec.output_model) else spec.output_model.model_validate(item)
        return Completion(
            output=output,
            model=self.model,
            tokens_in=self.tokens[0],
            tokens_out=self.tokens[1],
            model_version=self.model,
        )
