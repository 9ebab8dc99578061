"""The embedded local provider: tasks on multilingual-e5-small, offline, on CPU.

:class:`LocalProvider` implements :class:`~crmpilot.llm.base.Provider` like the
OpenAI provider does and returns the same output models, computed by
embedding-based methods instead of a chat model. It knows no task by name: a
declared task's outputs are answered by :class:`DeclaredAnswerer` (enums
zero-shot or from trained heads, extractive text), any other task by the
method it brings in ``TaskSpec.local`` (the built-in ones live in
:mod:`crmpilot.tasks.local`). The model is loaded on the first call, once per
process; embeddings run in a worker thread, batched across concurrent calls.

A label head (``head_for``) comes zero-shot from the labels' descriptions, or from a head trained with
``crmpilot train`` when ``CRMPILOT_LLM_LOCAL_HEAD`` names its artefact (loaded,
and checked against the running encoder, when the provider is built). A trained
head's id goes into provenance: ``model_version`` is ``<encoder>+<head id>``,
and the provider's ``model`` (hence the response-cache key) names it too, as it
names the engine (``multilingual-e5-small-q4-int8`` on the default one): an
answer of one engine or head is never served from the cache to another. Its
:meth:`~LocalProvider.method_version` (a hash of the code of the local methods
that answer a task) is part of the key as well, so a build whose rules changed
(a new summarizer) never serves an earlier build's answers from a shared cache.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from crmpilot import text
from crmpilot.errors import CrmpilotError, Fatal
from crmpilot.llm.base import Completion, Label, TaskSpec
from crmpilot.llm.errors import LocalCodeFailed
from crmpilot.llm.local.declared import DeclaredAnswerer, unsupported
from crmpilot.llm.local.embedder import MODEL_NAME, EmbeddingBatcher, Encoder
from crmpilot.llm.local.heads import DEFAULT_TEMPERATURE, TicketClassifierHead, ZeroShotHead
from crmpilot.llm.local.once import Once
from crmpilot.llm.local.trained import LocalHeadSettings, TrainedHead, load_head

__all__ = [
    "MODEL_NAME",
    "EmbeddingBatcher",
    "Encoder",
    "LocalProvider",
    "TicketClassifierHead",
    "TrainedHead",
    "UnsupportedTask",
    "ZeroShotHead",
]

OutputT = TypeVar("OutputT", bound=BaseModel)


@cache
def _code_hash(path: Path) -> str:
    """A hash of the Python sources of ``path`` (one package's methods, or one module), read once per process."""
    h = hashlib.sha256()
    for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
        h.update(str(source.relative_to(path.parent if path.is_file() else path)).encode())
        h.update(source.read_bytes())
    return h.hexdigest()[:12]


def _digest(names: list[str]) -> str:
    """Which rules answer (a spec that names another rule of the same module is another version)."""
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()[:12]


def _package_of(fn: Any) -> Path | None:
    module = sys.modules.get(getattr(fn, "__module__", ""))
    file = getattr(module, "__file__", None)
    return Path(file).parent if file else None


def _validated(spec: TaskSpec[OutputT], answer: Any, who: str) -> OutputT:
    """``answer`` as the task's output model; for a declared task, a value its local code got wrong is
    :class:`LocalCodeFailed` (the same input gives the same answer)."""
    try:
        return spec.output_model.model_validate(answer)
    except ValidationError as exc:
        if not spec.outputs:
            raise
        where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        raise LocalCodeFailed(f"{spec.name}: {who} answered outside the spec: {where}") from exc


class UnsupportedTask(Fatal):
    """The local provider has no method for this task, or its head does not fit the vocabulary."""


class LocalProvider:
    """Runs declared tasks and tasks with a local method on the bundled model.

    ``head`` replaces the zero-shot label head a task asks for with ``head_for``
    (e.g. one trained on closed cases); its labels must be the vocabulary, in order (a
    :class:`TrainedHead` may also cover a subset, in any order). Without
    ``head``, the artefact at ``head_path``, else at ``CRMPILOT_LLM_LOCAL_HEAD``,
    is loaded if set.
    """

    name = "local"
    model: str

    def __init__(
        self,
        *,
        head: TicketClassifierHead | None = None,
        batcher: EmbeddingBatcher | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        head_path: Path | str | None = None,
        declared_heads_paths: Mapping[str, Path | str] | None = None,
    ) -> None:
        self.batcher = batcher or EmbeddingBatcher(Encoder())
        if head is None and (path := head_path or LocalHeadSettings().head):
            head = load_head(path, encoder=self.batcher.encoder.model_version)
        self._head = head
        self._aligned: dict[tuple[str, ...], TicketClassifierHead] = {}
        self._versions: dict[int, tuple[TaskSpec[Any], str]] = {}
        self.model = self.batcher.encoder.model_name
        if head is not None:
            self.model = f"{self.model}+{head.id}"
        self._temperature = temperature
        self._zero_shot: Once[tuple[Label, ...], ZeroShotHead] = Once()
        paths = LocalHeadSettings().heads if declared_heads_paths is None else declared_heads_paths
        if bad := [key for key in paths if len(key.split(".", 1)) != 2]:
            raise UnsupportedTask(f"CRMPILOT_LLM_LOCAL_HEADS keys are '<enrichment>.<field>', not {bad[0]!r}")
        declared_heads = {
            tuple(key.split(".", 1)): load_head(path, encoder=self.batcher.encoder.model_version)
            for key, path in paths.items()
        }
        self.declared = DeclaredAnswerer(self.batcher, heads=declared_heads, temperature=temperature)  # type: ignore[arg-type]  # the keys are split in two on '.' (checked above)
        if declared_heads:  # the cache key names every head: an answer of one head is never served for another
            self.model = f"{self.model}+" + "+".join(sorted(h.id for h in declared_heads.values()))

    def method_version(self, spec: TaskSpec[Any]) -> str:
        """The version of the code that answers ``spec``: this package's, and the task's own local method's and rules'
        (computed once per task: every call asks for it)."""
        known = self._versions.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1]
        version = self._method_version(spec)
        self._versions[id(spec)] = (spec, version)
        return version

    def _method_version(self, spec: TaskSpec[Any]) -> str:
        folders = [Path(__file__).parent, Path(text.__file__)]  # this package, and the sentences it quotes
        rules = [shape.rule for shape in spec.outputs if shape.rule is not None]
        for method in (getattr(spec.local, "fn", spec.local), *(getattr(r, "fn", r) for r in rules)):
            if method is not None and (own := _package_of(method)) is not None:
                folders.append(own)
        codes = "+".join(_code_hash(folder) for folder in dict.fromkeys(folders))
        named = [*rules, *((spec.local,) if spec.outputs and spec.local is not None else ())]
        names = [getattr(r, "name", None) or f"{r.__module__}.{r.__qualname__}" for r in named]
        return f"{codes}+{_digest(names)}" if named else codes

    def unsupported(self, spec: TaskSpec[Any]) -> list[tuple[str, str]]:
        """The outputs of a declared task this provider cannot answer, and why (empty: it answers all)."""
        return unsupported(spec, self.declared.heads)

    async def complete(self, spec: TaskSpec[OutputT], payload: Mapping[str, Any]) -> Completion[OutputT]:
        if spec.outputs and spec.local is None:
            answer, tokens = await self.declared.answer(spec, payload)
            return Completion(
                output=_validated(spec, answer, "its local rules"),
                model=self.batcher.encoder.model_name,
                tokens_in=tokens,
                tokens_out=0,
                model_version="+".join(
                    [self.batcher.encoder.model_version, *sorted(set(self.declared.head_ids(spec.name).values()))]
                ),
                extra={"heads": self.declared.head_ids(spec.name)} if self.declared.heads else {},
                confidence_source="local",
            )
        if spec.local is None:
            raise UnsupportedTask(
                f"the local provider cannot run task {spec.name!r}: it declares no outputs and no local method"
            )
        if spec.outputs:  # a declared task's local method is user code: its failure is this input's
            method = getattr(spec.local, "name", "local")
            try:
                local_answer = await spec.local(self, spec, payload)
            except CrmpilotError:
                raise  # crmpilot's own (the encoder unavailable, a head that does not fit): its trait decides
            except Exception as exc:
                raise LocalCodeFailed(
                    f"{spec.name}: the local method {method!r} failed: {type(exc).__name__}: {exc}"[:1000]
                ) from exc
        else:
            local_answer = await spec.local(self, spec, payload)
        output, tokens, extra = local_answer.output, local_answer.tokens, dict(local_answer.extra)
        return Completion(
            output=_validated(
                spec, output.model_dump() if isinstance(output, BaseModel) else output, "its local method"
            ),
            model=self.batcher.encoder.model_name,
            tokens_in=tokens,
            tokens_out=0,
            model_version=self._model_version,
            extra=extra,
            confidence_source="local",
        )

    @property
    def head(self) -> TicketClassifierHead | None:
        """The configured (trained) head; ``None`` when classification is zero-shot."""
        return self._head

    @property
    def _model_version(self) -> str:
        version = self.batcher.encoder.model_version
        return version if self._head is None else f"{version}+{self._head.id}"

    async def head_for(self, categories: tuple[Label, ...]) -> TicketClassifierHead:
        """The category head for a taxonomy: the given one if it fits, else zero-shot (built once)."""
        names = tuple(c.name for c in categories)
        if self._head is not None:
            if tuple(self._head.labels) == names:
                return self._head
            if isinstance(self._head, TrainedHead) and set(self._head.labels) <= set(names):
                if names not in self._aligned:
                    self._aligned[names] = self._head.aligned(names)
                return self._aligned[names]
            raise UnsupportedTask(
                f"head {self._head.id!r} labels {self._head.labels} do not fit taxonomy {names}; "
                "build the task from the head's categories"
            )
        head = await self._zero_shot.get(
            categories, lambda: ZeroShotHead.build(categories, self.batcher, temperature=self._temperature)
        )
        return cast(TicketClassifierHead, head)
