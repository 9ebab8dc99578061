"""Summaries on real mail: crashes, grounding, placeholders, ROUGE against human summaries, throughput.

Each email goes through the same LLM client a service uses (PII redaction on, the
response cache off), as ``summarize_email`` with the service's word budget. For
every email the evaluation counts:

- **errors**: the call raised (a provider's own output failing its model is one);
- **grounding failures**: an action-item quote or entity value or quote that is not an
  exact substring of the *original* subject or body (after the placeholders are put back);
- **placeholders**: a redaction placeholder (``<PHONE_1>``) left in the summary, a quote or
  an entity while the original text had no such string;
- **ROUGE-1/2/L** (F1, lower-cased alphanumeric tokens, no stemming) of the summary against
  each human reference, the best of the references per email, averaged; beside it the
  same for LEAD (the body's first N words, N = the summary's own length, so both have
  the same length), the first sentence of the body, and the subject line alone.

The data set is ``aeslc-dev`` (``../shared/datasets/aeslc-dev/dev.jsonl``: ``body``,
``subject``, ``ann0..2``); it is evaluation data only and never copied.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmpilot.evaluation.errors import DatasetError
from crmpilot.llm.client import LLMClient
from crmpilot.llm.errors import LLMError
from crmpilot.tasks.summarize_email import DEFAULT_MAX_WORDS, SUMMARIZE_EMAIL, EmailSummaryOutput, grounding_failures

__all__ = [
    "BASELINES",
    "Email",
    "Rouge",
    "SummaryReport",
    "evaluate_summaries",
    "lead_words",
    "load_emails",
    "rouge",
    "summary_html",
]

_TOKEN = re.compile(r"[a-z0-9]+")
_PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


@dataclass(frozen=True, slots=True)
class Email:
    id: str
    subject: str
    body: str
    references: tuple[str, ...]


def load_emails(path: Path, *, limit: int | None = None) -> list[Email]:
    """The emails of an ``aeslc``-style JSON-lines file: ``body``, optional ``id`` (else the line number),
    ``subject`` and human reference summaries ``ann0``, ``ann1``, … (ROUGE is measured where there are some)."""
    if not path.is_file():
        raise DatasetError(f"no such data set: {path} (aeslc-dev lives in ../shared/datasets beside the repository)")
    emails = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                refs = tuple(str(row[k]) for k in sorted(row) if k.startswith("ann") and str(row[k]).strip())
                emails.append(Email(str(row.get("id") or n), str(row.get("subject") or ""), str(row["body"]), refs))
            except (ValueError, KeyError) as exc:
                raise DatasetError(f"{path}:{n}: not an email row: {exc}") from exc
            if limit is not None and len(emails) >= limit:
                break
    return emails


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Rouge:
    r1: float
    r2: float
    rl: float

    def __add__(self, other: Rouge) -> Rouge:
        return Rouge(self.r1 + other.r1, self.r2 + other.r2, self.rl + other.rl)

    def scaled(self, k: float) -> Rouge:
        return Rouge(self.r1 * k, self.r2 * k, self.rl * k)


def _f1(overlap: int, candidate: int, reference: int) -> float:
    if not overlap or not candidate or not reference:
        return 0.0
    p, r = overlap / candidate, overlap / reference
    return 2 * p * r / (p + r)


def _ngrams(tokens: Sequence[str], n: int) -> dict[tuple[str, ...], int]:
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge(candidate: str, references: Iterable[str]) -> Rouge:
    """ROUGE-1/2/L F1 of ``candidate``: for each measure the best over the references."""
    cand = _tokens(candidate)
    best = Rouge(0.0, 0.0, 0.0)
    for ref_text in references:
        ref = _tokens(ref_text)
        scores = []
        for n in (1, 2):
            c, r = _ngrams(cand, n), _ngrams(ref, n)
            overlap = sum(min(k, r.get(g, 0)) for g, k in c.items())
            scores.append(_f1(overlap, max(len(cand) - n + 1, 0), max(len(ref) - n + 1, 0)))
        scores.append(_f1(_lcs(cand, ref), len(cand), len(ref)))
        best = Rouge(max(best.r1, scores[0]), max(best.r2, scores[1]), max(best.rl, scores[2]))
    return best


def lead_words(body: str, n: int) -> str:
    """The body's first ``n`` words (the LEAD baseline at a given length)."""
    return " ".join(body.split()[:n])


def first_sentence(body: str) -> str:
    for part in _SENTENCE_END.split(body):
        if part.strip():
            return part.strip()
    return ""


@dataclass
class SummaryReport:
    emails: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    grounding_failures: int = 0
    """Emails with at least one quote or entity not found in the original text."""
    placeholders: int = 0
    """Emails whose output holds a placeholder the original text did not have."""
    words: int = 0
    referenced: int = 0
    """Scored emails with at least one human reference summary (ROUGE is their mean)."""
    seconds: float = 0.0
    rouge: dict[str, Rouge] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    """Words of each candidate (the summary and every baseline), summed over the referenced emails."""
    examples: list[tuple[str, str]] = field(default_factory=list)
    """(email id, what went wrong) for the first few problems."""

    @property
    def scored(self) -> int:
        return self.emails - sum(self.errors.values())

    def mean(self, name: str) -> Rouge:
        return self.rouge[name].scaled(100 / self.referenced) if self.referenced else Rouge(0.0, 0.0, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "emails": self.emails,
            "errors": self.errors,
            "grounding_failures": self.grounding_failures,
            "placeholders": self.placeholders,
            "words_per_summary": round(self.words / self.scored, 1) if self.scored else 0.0,
            "emails_per_second": round(self.emails / self.seconds, 2) if self.seconds else 0.0,
            "referenced": self.referenced,
            "rouge": {
                k: {
                    "r1": round(v.r1, 1),
                    "r2": round(v.r2, 1),
                    "rl": round(v.rl, 1),
                    "words": round(self.lengths.get(k, 0) / self.referenced, 1),
                }
                for k in self.rouge
                for v in [self.mean(k)]
            }
            if self.referenced
            else {},
            "examples": self.examples[:10],
        }


def _output_texts(out: EmailSummaryOutput) -> list[str]:
    texts = [out.summary]
    for item in out.action_items:
        texts += [item.text, item.quote, item.due or ""]
    for entity in out.entities:
        texts += [entity.value, entity.quote]
    return texts


async def evaluate_summaries(
    client: LLMClient,
    emails: Sequence[Email],
    *,
    max_words: int = DEFAULT_MAX_WORDS,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> SummaryReport:
    """Run ``summarize_email`` on every email through ``client`` and measure what the module says."""
    report = SummaryReport(rouge={k: Rouge(0.0, 0.0, 0.0) for k in ("summary", "lead", "first_sentence", "subject")})
    gate = asyncio.Semaphore(concurrency)

    async def one(email: Email) -> None:
        payload: Mapping[str, Any] = {"subject": email.subject, "body": email.body, "max_words": max_words}
        async with gate:
            try:
                run = await client.run(SUMMARIZE_EMAIL, payload)
            except (LLMError, ValueError) as exc:
                kind = type(exc).__name__
                report.errors[kind] = report.errors.get(kind, 0) + 1
                report.examples.append((email.id, f"{kind}: {str(exc)[:200]}"))
                return
            finally:
                report.emails += 1
                if progress is not None:
                    progress(1)
        out = run.output
        if failures := grounding_failures(out, dict(payload)):
            report.grounding_failures += 1
            report.examples.append((email.id, f"not in the email: {failures[0][:120]!r}"))
        original = f"{email.subject}\n{email.body}"
        if any(p not in original for t in _output_texts(out) for p in _PLACEHOLDER.findall(t)):
            report.placeholders += 1
            report.examples.append((email.id, "placeholder left in the output"))
        n = len(out.summary.split())
        report.words += n
        if not email.references:
            return
        report.referenced += 1
        for name, text in (
            ("summary", out.summary),
            ("lead", lead_words(email.body, n)),
            ("first_sentence", first_sentence(email.body)),
            ("subject", email.subject),
        ):
            report.rouge[name] = report.rouge[name] + rouge(text, email.references)
            report.lengths[name] = report.lengths.get(name, 0) + len(text.split())

    started = time.perf_counter()
    await asyncio.gather(*(one(e) for e in emails))
    report.seconds = time.perf_counter() - started
    return report


BASELINES = {
    "summary": "crmpilot's summary",
    "lead": "LEAD (the body's first words, as many as the summary has)",
    "first_sentence": "the body's first sentence",
    "subject": "the subject line",
}


def summary_html(report: SummaryReport, name: str) -> str:
    """A self-contained HTML page of ``report`` (no external assets)."""
    from html import escape

    d = report.as_dict()
    tiles = [
        ("emails", d["emails"]),
        ("errors", sum(report.errors.values())),
        ("grounding failures", d["grounding_failures"]),
        ("placeholders left", d["placeholders"]),
        ("words per summary", d["words_per_summary"]),
        ("emails / s", d["emails_per_second"]),
    ]
    rows = "".join(
        f"<tr><td>{escape(BASELINES[k])}</td><td>{v['r1']}</td><td>{v['r2']}</td><td>{v['rl']}</td>"
        f"<td>{v['words']}</td></tr>"
        for k, v in d["rouge"].items()
    )
    rouge_table = (
        f"<h2>ROUGE F1 against the human summaries ({report.referenced} "
        "emails)</h2><table><tr><th></th><th>ROUGE-1</th>"
        f"<th>ROUGE-2</th><th>ROUGE-L</th><th>words</th></tr>{rows}</table>"
        if rows
        else "<p>No reference summaries in the data: no ROUGE.</p>"
    )
    problems = "".join(f"<li><code>{escape(i)}</code>: {escape(w)}</li>" for i, w in report.examples[:20])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(name)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}.tiles{display:flex;gap:1em;flex-wrap:wrap}"
        ".tile{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}.tile b{display:block;font-size:1.6em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em "
        ".8em;text-align:right}td:first-child{text-align:left}"
        f"</style></head><body><h1>summarize_email: {escape(name)}</h1><div class='tiles'>"
        + "".join(f"<div class='tile'><b>{v}</b>{escape(k)}</div>" for k, v in tiles)
        + f"</div>{rouge_table}"
        + (f"<h2>Problems (first {min(20, len(report.examples))})</h2><ul>{problems}</ul>" if problems else "")
        + "</body></html>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crmpilot.evaluation.summaries [PATH] [--limit N]``: the table, as JSON."""
    import argparse

    from crmpilot.llm.factory import build_llm_client
    from crmpilot.llm.settings import LLMSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path",
        nargs="?",
        default=str(Path(__file__).resolve().parents[5] / ".." / "shared" / "datasets" / "aeslc-dev" / "dev.jsonl"),
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS)
    args = parser.parse_args(argv)
    try:
        emails = load_emails(Path(args.path), limit=args.limit)
    except DatasetError as exc:
        print(f"not evaluated: {exc}")
        return 0
    client = build_llm_client(LLMSettings(cache="off"))
    report = asyncio.run(evaluate_summaries(client, emails, max_words=args.max_words))
    print(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
