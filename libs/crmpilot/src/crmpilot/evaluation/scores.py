"""``crmpilot eval scores``: how well ``score_request`` ranks and calibrates leads that did or did not convert.

The data is JSON lines, one request each: the task's input fields (``company``,
``description``, optional ``kind``, ``country``, ``employees``, ``amount``,
``currency``, ``email_domain``, ``id``) and the outcome, a boolean column
(``converted`` by default; ``true``/``false``, ``1``/``0`` or ``yes``/``no``).
Every request goes through the shared LLM client with the built-in spec's task, as
the enricher runs it, and
the report gives:

- **AUC**: the chance that a converted request scores above one that did not
  (ties count half; Mann–Whitney);
- **calibration**: the score read as a probability (``score / 100``) against
  the outcome — reliability table, ECE and Brier score;
- **by band**: requests and conversion rate per band (hot ≥ 70, warm ≥ 40,
  cold), which should fall from hot to cold;
- errors by type and requests per second. JSON and a self-contained HTML page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from crmpilot.enrichments import load_registry, task_for
from crmpilot.evaluation.errors import DatasetError
from crmpilot.evaluation.metrics import reliability
from crmpilot.llm.client import LLMClient
from crmpilot.llm.errors import LLMError
from crmpilot.tasks.scoring import band_for

__all__ = ["ScoredRequest", "ScoreReport", "auc", "evaluate_scores", "load_requests", "score_html"]

_FIELDS = ("kind", "company", "email_domain", "country", "employees", "amount", "currency", "description")
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


@dataclass(frozen=True, slots=True)
class ScoredRequest:
    id: str
    payload: dict[str, Any]
    converted: bool


def _outcome(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DatasetError(f"{where}: the outcome must be true or false (or 1/0, yes/no), not {value!r}")


def load_requests(path: Path, *, outcome: str = "converted", limit: int | None = None) -> list[ScoredRequest]:
    """The labelled requests of a JSON-lines file; :class:`DatasetError` names the line and the reason."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    out: list[ScoredRequest] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: a JSON object per line is expected")
        if outcome not in row:
            raise DatasetError(f"{where}: no {outcome!r} column (the outcome; --outcome names another)")
        if not str(row.get("description") or row.get("company") or "").strip():
            raise DatasetError(f"{where}: neither a description nor a company: nothing to score")
        payload = {k: "" if row.get(k) is None else str(row[k]) for k in _FIELDS}  # as the enricher reads an event
        payload["kind"] = payload["kind"] or "lead"
        out.append(ScoredRequest(str(row.get("id") or n), payload, _outcome(row[outcome], where)))
        if limit is not None and len(out) >= limit:
            break
    return out


def auc(scores: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); ``None`` without both outcomes."""
    pos = [s for s, y in zip(scores, outcomes, strict=True) if y]
    neg = [s for s, y in zip(scores, outcomes, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


@dataclass
class ScoreReport:
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    scores: list[tuple[int, str, bool]] = field(default_factory=list)
    """(score, band, converted) of every scored request."""
    seconds: float = 0.0
    bins: int = 10

    def as_dict(self) -> dict[str, Any]:
        scores = [s for s, _, _ in self.scores]
        outcomes = [y for _, _, y in self.scores]
        probs = [s / 100 for s in scores]
        bands = {}
        for band in ("hot", "warm", "cold"):
            ys = [y for _, b, y in self.scores if b == band]
            bands[band] = {"requests": len(ys), "conversion_rate": round(sum(ys) / len(ys), 3) if ys else None}
        table = reliability(probs, outcomes, bins=self.bins) if self.scores else None
        area = auc(scores, outcomes)
        return {
            "requests": self.requests,
            "scored": len(self.scores),
            "errors": self.errors,
            "converted": sum(outcomes),
            "auc": None if area is None else round(area, 3),
            "ece": None if table is None else round(table.ece, 3),
            "brier": round(sum((p - y) ** 2 for p, y in zip(probs, outcomes, strict=True)) / len(probs), 3)
            if probs
            else None,
            "bands": bands,
            "reliability": [] if table is None else [b.model_dump() for b in table.bins],
            "requests_per_second": round(self.requests / self.seconds, 2) if self.seconds else 0.0,
        }


async def evaluate_scores(
    client: LLMClient,
    requests: Sequence[ScoredRequest],
    *,
    concurrency: int = 8,
    bins: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ScoreReport:
    """Run ``score_request`` on every request through ``client`` and collect scores against outcomes."""
    report = ScoreReport(bins=bins)
    gate = asyncio.Semaphore(concurrency)
    task = task_for(load_registry([], builtin=True).get("score_request"))

    async def one(req: ScoredRequest) -> None:
        async with gate:
            try:
                run = await client.run(task, req.payload)
            except LLMError as exc:
                kind = type(exc).__name__
                report.errors[kind] = report.errors.get(kind, 0) + 1
                return
            finally:
                report.requests += 1
                if progress is not None:
                    progress(1)
        score = int(run.output.model_dump()["score"])
        report.scores.append((score, band_for(score), req.converted))

    started = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    report.seconds = time.perf_counter() - started
    return report


def score_html(report: ScoreReport, name: str) -> str:
    """A self-contained HTML page of ``report``."""
    d = report.as_dict()

    def cell(value: float | None, fmt: str = "{:.2f}") -> str:
        return "" if value is None else fmt.format(value)

    bands = "".join(
        f"<tr><td>{escape(b)}</td><td>{v['requests']}</td><td>{cell(v['conversion_rate'], '{:.3f}')}</td></tr>"
        for b, v in d["bands"].items()
    )
    rel = "".join(
        f"<tr><td>{r['lo']:.1f}–{r['hi']:.1f}</td><td>{r['count']}</td><td>{cell(r['accuracy'])}</td></tr>"
        for r in d["reliability"]
    )
    return f"""<!doctype html><meta charset="utf-8"><title>{escape(name)}</title>
<style>body{{font:14px system-ui;margin:2em;max-width:52em}}td,th{{padding:2px 10px;text-align:right}}</style>
<h1>score_request: {escape(name)}</h1>
<p>{d["requests"]} requests, {d["scored"]} scored, {d["converted"]} converted;
errors {escape(str(d["errors"] or "none"))}; {d["requests_per_second"]} requests/s</p>
<p>AUC {d["auc"]} · ECE {d["ece"]} · Brier {d["brier"]} (the score read as a probability, score / 100)</p>
<h2>By band</h2><table><tr><th>band</th><th>requests</th><th>converted</th></tr>{bands}</table>
<h2>Reliability</h2><table><tr><th>score / 100</th><th>requests</th><th>converted</th></tr>{rel}</table>
"""
