"""The embedded local provider: the three tasks on multilingual-e5-small, offline, on CPU.

:class:`LocalProvider` implements :class:`~crmpilot.llm.base.Provider` like the
OpenAI provider does and returns the same output models, computed by
embedding-based methods instead of a chat model (see ``classify``,
``summarize`` and ``score``). The model is loaded on the first call, once per
process; embeddings run in a worker thread, batched across concurrent calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from crmpilot.errors import Fatal
from crmpilot.llm.base import Completion, TaskSpec
from crmpilot.llm.local.classify import classify_ticket
from crmpilot.llm.local.embedder import MODEL_NAME, EmbeddingBatcher, Encoder
from crmpilot.llm.local.heads import DEFAULT_TEMPERATURE, TicketClassifierHead, ZeroShotHead
from crmpilot.llm.local.once import Once
from crmpilot.llm.local.score import score_request
from crmpilot.llm.local.summarize import summarize_email
from crmpilot.tasks.classify_ticket import TicketClassificationOutput
from crmpilot.tasks.taxonomy import Category

__all__ = [
    "MODEL_NAME",
    "EmbeddingBatcher",
    "Encoder",
    "LocalProvider",
    "TicketClassifierHead",
    "UnsupportedTask",
    "ZeroShotHead",
]

OutputT = TypeVar("OutputT", bound=BaseModel)


class UnsupportedTask(Fatal):
    """The local provider has no method for this task, or its head does not fit the taxonomy."""


class LocalProvider:
    """Runs ``classify_ticket``, ``summarize_email`` and ``score_request`` on the bundled model.

    ``head`` replaces the zero-shot category head (e.g. one trained on closed
    cases); its labels must be the taxonomy's category names, in order.
    """

    name = "local"
    model = MODEL_NAME

    def __init__(
        self,
        *,
        head: TicketClassifierHead | None = None,
        batcher: EmbeddingBatcher | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        self.batcher = batcher or EmbeddingBatcher(Encoder())
        self._head = head
        self._temperature = temperature
        self._zero_shot: Once[tuple[Category, ...], ZeroShotHead] = Once()

    async def complete(self, spec: TaskSpec[OutputT], payload: Mapping[str, Any]) -> Completion[OutputT]:
        output: BaseModel
        extra: dict[str, Any] = {}
        if spec.name == "classify_ticket" and issubclass(spec.output_model, TicketClassificationOutput):
            head = await self.head_for(spec.output_model.taxonomy)
            output, tokens = await classify_ticket(
                payload, output_model=spec.output_model, head=head, batcher=self.batcher
            )
            extra["head"] = head.id
        elif spec.name == "summarize_email":
            output, tokens = await summarize_email(payload, batcher=self.batcher)
        elif spec.name == "score_request":
            output, tokens = await score_request(payload, batcher=self.batcher)
        else:
            raise UnsupportedTask(f"the local provider cannot run task {spec.name!r}")
        return Completion(
            output=spec.output_model.model_validate(output.model_dump()),
            model=MODEL_NAME,
            tokens_in=tokens,
            tokens_out=0,
            model_version=self.batcher.encoder.model_version,
            extra=extra,
        )

    async def head_for(self, categories: tuple[Category, ...]) -> TicketClassifierHead:
        """The category head for a taxonomy: the given one if it fits, else zero-shot (built once)."""
        names = tuple(c.name for c in categories)
        if self._head is not None:
            if tuple(self._head.labels) != names:
                raise UnsupportedTask(f"head {self._head.id!r} labels {self._head.labels} != taxonomy {names}")
            return self._head
        head = await self._zero_shot.get(
            categories, lambda: ZeroShotHead.build(categories, self.batcher, temperature=self._temperature)
        )
        return cast(TicketClassifierHead, head)
