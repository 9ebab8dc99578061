"""`crmpilot eval`: measure a task on labelled data with any provider, and compare runs.

``run`` sends every labelled ticket through the shared LLM client (local
zero-shot, a local trained head, or an OpenAI-compatible endpoint from
``CRMPILOT_LLM_*``), prints accuracy, macro-F1, per-class precision/recall, top
confusions, calibration (reliability table, ECE), latency and cost, and writes
``<name>.json`` and a self-contained ``<name>.html``. Items labelled
``__unknown__`` (or with a label given to ``--oos-label``) are out of scope:
the report counts how many of them would be auto-applied or suggested, and
how many the model flagged. ``compare`` prints two JSON reports side by side
with deltas. ``calibrate`` fits a temperature for the category confidence
(per model, prompt version and confidence source) and reports the ECE before
and after on held-out items. ``scores`` runs ``score_request`` over requests with a known outcome
(a converted column) and reports AUC, calibration of the score and the
conversion rate per band. ``summaries`` runs ``summarize_email`` over emails (JSON lines)
and reports crashes, grounding failures, placeholders left, ROUGE against the
human summaries when the data has them (beside LEAD at the same length, the
first sentence and the subject), words per summary and throughput. ``banking77`` runs the Banking77 benchmark
(:mod:`crmpilot.evaluation.banking77`, e.g. ``--holdout-intents 10 --seed 0``
for the out-of-scope figures). Exit codes: 0 done, 1 bad input (data,
categories, prompt, head, report file), 3 (``summaries``) an email crashed,
failed grounding or kept a placeholder.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import CrmpilotError

if TYPE_CHECKING:
    from ..evaluation import EvalReport
    from ..llm.client import LLMClient

R = TypeVar("R")

__all__ = ["app"]

app = typer.Typer(
    help="Measure classify_ticket on labelled data (any provider, prompt version or trained head) and compare runs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_out = Console()
_err = Console(stderr=True)


class Task(StrEnum):
    classify_ticket = "classify_ticket"


class ProviderChoice(StrEnum):
    local = "local"
    openai = "openai"


@app.command()
def run(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Labelled CSV or JSONL (text or subject/description; label or category).", dir_okay=False
        ),
    ],
    task: Annotated[Task, typer.Option("--task", help="The task to measure.")] = Task.classify_ticket,
    categories: Annotated[
        Path | None,
        typer.Option(
            "--categories",
            help="JSON taxonomy (names, or {name, description, queue}); default: the head's labels, else the "
            "built-in taxonomy.",
            dir_okay=False,
        ),
    ] = None,
    provider: Annotated[
        ProviderChoice | None, typer.Option("--provider", help="Override CRMPILOT_LLM_PROVIDER.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Override CRMPILOT_LLM_MODEL (OpenAI-compatible endpoints).")
    ] = None,
    head: Annotated[
        Path | None,
        typer.Option(
            "--head",
            help="Trained head artefact for the local provider (default: CRMPILOT_LLM_LOCAL_HEAD, else zero-shot).",
        ),
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option("--prompt-file", help="Candidate system prompt with a {categories} placeholder.", dir_okay=False),
    ] = None,
    prompt_version: Annotated[
        str | None,
        typer.Option("--prompt-version", help="Version label of the prompt (with --prompt-file: any label)."),
    ] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Label column name.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Items in flight at once.")] = 8,
    bins: Annotated[int, typer.Option("--bins", min=2, max=50, help="Bins of the reliability table.")] = 10,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON and HTML reports.", file_okay=False)] = Path(
        "eval-reports"
    ),
    name: Annotated[
        str | None, typer.Option("--name", help="Report name (file stem); default: task-provider-head-time.")
    ] = None,
    warmup: Annotated[
        bool, typer.Option("--warmup/--no-warmup", help="One untimed call first (loads the local model).")
    ] = True,
    oos_label: Annotated[
        list[str] | None,
        typer.Option(
            "--oos-label", help="A gold label that marks an item out of scope (repeatable; __unknown__ always does)."
        ),
    ] = None,
) -> None:
    """Run a task over a labelled file and report its quality, calibration, latency and cost."""
    from ..evaluation import (
        build_eval_setup,
        check_labels,
        evaluate,
        load_categories,
        read_labelled,
    )
    from ..evaluation.console import summary
    from ..evaluation.htmlreport import write_html
    from ..evaluation.report import OOS_LABEL

    out_of_scope = frozenset({OOS_LABEL, *(oos_label or ())})
    try:
        dataset = read_labelled(data, label_column=label_column).first(limit)
        taxonomy = load_categories(categories) if categories is not None else None
        setup = build_eval_setup(
            provider=provider.value if provider else None,
            model=model,
            head_path=head,
            categories=taxonomy,
            prompt_file=prompt_file,
            prompt_version=prompt_version,
            concurrency=concurrency,
        )
        check_labels(dataset.labels, setup.categories, dataset.source, out_of_scope=out_of_scope)
    except CrmpilotError as exc:
        _fail(exc)
    except ValidationError as exc:  # CRMPILOT_LLM_* settings that do not parse
        _err.print(f"[red]invalid CRMPILOT_LLM_* settings: {escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(1) from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    primary = setup.client.providers[0]
    report_name = name or _safe(f"{task.value}-{primary.name}-{setup.head or getattr(primary, 'model', '')}-{stamp}")
    _out.print(
        f"{escape(setup.describe)} · {len(dataset)} items · prompt {escape(setup.spec.prompt.version)}", soft_wrap=True
    )

    async def go() -> EvalReport:
        try:
            with _progress() as progress:
                bar = progress.add_task(task.value, total=len(dataset))
                return await evaluate(
                    setup.client,
                    setup.spec,
                    dataset,
                    name=report_name,
                    head=setup.head,
                    concurrency=concurrency,
                    bins=bins,
                    warmup=warmup,
                    on_item=lambda _: progress.advance(bar),
                    out_of_scope=out_of_scope,
                )
        finally:
            await setup.client.aclose()

    try:
        report = asyncio.run(go())
    except CrmpilotError as exc:
        _fail(exc)
    json_path = report.save(out / f"{report_name}.json")
    html_path = write_html(report, out / f"{report_name}.html")
    _out.print(summary(report))
    _out.print(f"reports: {escape(str(json_path))}  {escape(str(html_path))}", soft_wrap=True)


@app.command()
def calibrate(
    data: Annotated[
        Path,
        typer.Option("--data", help="Labelled closed cases, CSV or JSONL (as `eval run` reads).", dir_okay=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Calibration file to write (an existing one keeps its other entries); default: "
            "CRMPILOT_LLM_CALIBRATION_FILE, else ./calibration.json.",
            dir_okay=False,
        ),
    ] = None,
    categories: Annotated[
        Path | None,
        typer.Option("--categories", help="JSON taxonomy; default: the built-in one.", dir_okay=False),
    ] = None,
    provider: Annotated[
        ProviderChoice | None, typer.Option("--provider", help="Override CRMPILOT_LLM_PROVIDER.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Override CRMPILOT_LLM_MODEL.")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Label column name.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Items in flight at once.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fit / held-out split.")] = 0,
    bins: Annotated[int, typer.Option("--bins", min=2, max=50, help="Bins of the ECE.")] = 10,
) -> None:
    """Fit a temperature for classify_ticket's category confidence on labelled cases; report ECE before/after.

    Half of the answered items (seeded) fit a temperature and the other half measure the ECE with and without
    it; the temperature written is then fitted on all of them. The entry is keyed by model, task, prompt
    version, field and confidence source, and the client applies it from CRMPILOT_LLM_CALIBRATION_FILE.
    """
    import os
    import random

    from ..evaluation import build_eval_setup, check_labels, load_categories, read_labelled, run_items
    from ..evaluation.calibration import fit_binary_temperature
    from ..evaluation.metrics import expected_calibration_error
    from ..llm.calibration import CalibrationEntry, Calibrations, apply_temperature, load_calibrations

    target = out or Path(os.environ.get("CRMPILOT_LLM_CALIBRATION_FILE") or "calibration.json")
    try:
        existing = load_calibrations(target) if target.exists() else Calibrations()
        dataset = read_labelled(data, label_column=label_column).first(limit)
        setup = build_eval_setup(
            provider=provider.value if provider else None,
            model=model,
            head_path=None,
            categories=load_categories(categories) if categories is not None else None,
            prompt_file=None,
            prompt_version=None,
            concurrency=concurrency,
        )
        check_labels(dataset.labels, setup.categories, dataset.source)
    except CrmpilotError as exc:
        _fail(exc)
    except ValidationError as exc:
        _err.print(f"[red]invalid CRMPILOT_LLM_* settings: {escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(1) from exc
    setup.client.calibrations = Calibrations()  # fit on the raw confidences, whatever the environment names
    _out.print(f"{escape(setup.describe)} · {len(dataset)} items · prompt {escape(setup.spec.prompt.version)}")

    async def go() -> tuple[list[tuple[float, bool]], dict[str, str | None]]:
        try:
            with _progress() as progress:
                bar = progress.add_task("calibrate", total=len(dataset))
                items, who, _ = await run_items(
                    setup.client, setup.spec, dataset, concurrency=concurrency, on_item=lambda _: progress.advance(bar)
                )
        finally:
            await setup.client.aclose()
        answered = [(i.confidence, i.predicted == i.gold) for i in items if i.confidence is not None]
        return answered, who

    try:
        answered, who = asyncio.run(go())
    except CrmpilotError as exc:
        _fail(exc)
    if len(answered) < 20:
        _err.print(f"[red]{len(answered)} answered items: too few to fit a temperature (20 at least)[/]")
        raise typer.Exit(1)
    order = list(range(len(answered)))
    random.Random(seed).shuffle(order)
    fit_half, held = order[: len(order) // 2], order[len(order) // 2 :]
    t_half = fit_binary_temperature([answered[i][0] for i in fit_half], [answered[i][1] for i in fit_half])
    held_conf, held_ok = [answered[i][0] for i in held], [answered[i][1] for i in held]
    before = expected_calibration_error(held_conf, held_ok, bins=bins)
    after = expected_calibration_error([apply_temperature(p, t_half) for p in held_conf], held_ok, bins=bins)
    temperature = fit_binary_temperature([c for c, _ in answered], [ok for _, ok in answered])
    entry = CalibrationEntry(
        model=str(getattr(setup.client.providers[0], "model", who["model"] or "")),
        task=setup.spec.name,
        prompt_version=setup.spec.prompt.version,
        field="category",
        source=who["confidence_source"] or "self_report",  # type: ignore[arg-type]  # a ConfidenceSource from the run
        temperature=temperature,
        items=len(answered),
        ece_before=before,
        ece_after=after,
        fitted_at=datetime.now(UTC),
    )
    path = existing.with_entry(entry).save(target)
    accuracy = sum(ok for _, ok in answered) / len(answered)
    _out.print(
        f"{entry.model} · {entry.task} {entry.prompt_version} · category · confidence from {entry.source}: "
        f"T = {temperature:.3f} on {len(answered)} answers (accuracy {accuracy:.3f}); on the {len(held)} held out "
        f"(T {t_half:.3f} fitted on the other {len(fit_half)}): ECE {before:.3f} → {after:.3f}"
    )
    _out.print(f"written: {escape(str(path))} (the client applies it with CRMPILOT_LLM_CALIBRATION_FILE={path})")


@app.command()
def summaries(
    data: Annotated[
        Path,
        typer.Argument(
            help="Emails, JSON lines: body, optional id, subject and reference summaries ann0, ann1, …", dir_okay=False
        ),
    ],
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N emails.", min=1)] = None,
    max_words: Annotated[
        int | None, typer.Option("--max-words", help="The summary's word budget (default: the service's).", min=5)
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Emails in flight at once.", min=1)] = 8,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON and HTML reports.", file_okay=False)] = Path(
        "eval-reports"
    ),
    name: Annotated[
        str | None, typer.Option("--name", help="Report name (file stem); default: summaries-provider-time.")
    ] = None,
) -> None:
    """Summarize emails with the configured provider: crashes, grounding, placeholders, ROUGE vs LEAD, throughput."""
    import json

    from rich.table import Table

    from ..evaluation.errors import DatasetError
    from ..evaluation.summaries import BASELINES, evaluate_summaries, load_emails, summary_html
    from ..tasks.summarize_email import DEFAULT_MAX_WORDS

    try:
        emails = load_emails(data, limit=limit)
    except DatasetError as exc:
        _fail(exc)
    if not emails:
        _fail(DatasetError(f"{data}: no emails"))
    words = max_words or DEFAULT_MAX_WORDS
    report, provider = _with_llm(
        "summarize_email",
        len(emails),
        lambda client, step: evaluate_summaries(
            client, emails, max_words=words, concurrency=concurrency, progress=step
        ),
    )
    report_name = _safe(name or f"summaries-{provider}-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    d = report.as_dict()
    _out.print(
        f"{d['emails']} emails: {sum(report.errors.values())} errors {report.errors or ''}, "
        f"{d['grounding_failures']} grounding failures, "
        f"{d['placeholders']} with a placeholder left; {d['words_per_summary']} words per summary; "
        f"{d['emails_per_second']} emails/s"
    )
    if d["rouge"]:
        table = Table(title=f"ROUGE F1 against the human summaries ({report.referenced} emails)")
        for col in ("", "ROUGE-1", "ROUGE-2", "ROUGE-L", "words"):
            table.add_column(col, justify="left" if not col else "right")
        for key, v in d["rouge"].items():
            table.add_row(BASELINES[key], f"{v['r1']:.1f}", f"{v['r2']:.1f}", f"{v['rl']:.1f}", f"{v['words']:.1f}")
        _out.print(table)
    else:
        _out.print("no reference summaries in the data: no ROUGE")
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / f"{report_name}.json", out / f"{report_name}.html"
    json_path.write_text(
        json.dumps({"format": "crmpilot.eval.summaries/1", "name": report_name, "data": str(data), **d}, indent=2)
        + "\n"
    )
    html_path.write_text(summary_html(report, report_name), encoding="utf-8")
    _out.print(f"reports: {escape(str(json_path))}  {escape(str(html_path))}", soft_wrap=True)
    if report.errors or report.grounding_failures or report.placeholders:
        raise typer.Exit(3)


@app.command()
def scores(
    data: Annotated[
        Path,
        typer.Argument(
            help="Requests, JSON lines: company, description (kind, country, employees, amount, currency, "
            "email_domain, id optional) and the outcome column",
            dir_okay=False,
        ),
    ],
    outcome: Annotated[
        str, typer.Option("--outcome", help="The boolean column: did the request convert (true/false, 1/0, yes/no).")
    ] = "converted",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N requests.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight at once.")] = 8,
    bins: Annotated[int, typer.Option("--bins", min=2, max=50, help="Bins of the reliability table.")] = 10,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON and HTML reports.", file_okay=False)] = Path(
        "eval-reports"
    ),
    name: Annotated[str | None, typer.Option("--name", help="Report name (file stem).")] = None,
) -> None:
    """Score requests with the configured provider: AUC against the outcome, calibration, conversion by band."""
    import json

    from ..evaluation.errors import DatasetError
    from ..evaluation.scores import evaluate_scores, load_requests, score_html

    try:
        requests = load_requests(data, outcome=outcome, limit=limit)
    except DatasetError as exc:
        _fail(exc)
    if not requests:
        _fail(DatasetError(f"{data}: no requests"))
    report, provider = _with_llm(
        "score_request",
        len(requests),
        lambda client, step: evaluate_scores(client, requests, concurrency=concurrency, bins=bins, progress=step),
    )
    report_name = _safe(name or f"scores-{provider}-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    d = report.as_dict()
    rates = {b: "-" if v["conversion_rate"] is None else f"{v['conversion_rate']:.0%}" for b, v in d["bands"].items()}
    bands = ", ".join(f"{b} {v['requests']} ({rates[b]} converted)" for b, v in d["bands"].items())
    _out.print(
        f"{d['requests']} requests: {d['scored']} scored, {sum(report.errors.values())} errors {report.errors or ''}; "
        f"{d['converted']} converted; AUC {d['auc']}, ECE {d['ece']}, Brier {d['brier']} (score / 100 as a "
        f"probability); by band: {bands}; {d['requests_per_second']} requests/s"
    )
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{report_name}.json"
    json_path.write_text(json.dumps(d, indent=2) + "\n")
    html_path = out / f"{report_name}.html"
    html_path.write_text(score_html(report, report_name))
    _out.print(f"reports: {escape(str(json_path))}  {escape(str(html_path))}", soft_wrap=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def banking77(ctx: typer.Context) -> None:
    """Banking77: zero-shot vs trained heads; --holdout-intents K for out-of-scope figures (options: --help)."""
    from ..evaluation.banking77 import main

    raise typer.Exit(main(list(ctx.args)))


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Report A (the baseline).", dir_okay=False)],
    b: Annotated[Path, typer.Argument(help="Report B (the candidate); deltas are B − A.", dir_okay=False)],
    classes: Annotated[int, typer.Option("--classes", min=0, help="Per-class F1 changes to list.")] = 10,
) -> None:
    """Print two eval reports side by side with deltas."""
    from ..evaluation import load_report
    from ..evaluation.console import compare_table

    try:
        ra, rb = load_report(a), load_report(b)
    except CrmpilotError as exc:
        _fail(exc)
    _out.print(compare_table(ra, rb, classes=classes))


@app.command()
def html(
    report: Annotated[Path, typer.Argument(help="A JSON report.", dir_okay=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: beside the JSON, .html.")] = None,
) -> None:
    """(Re)write the HTML report of a JSON report."""
    from ..evaluation import load_report
    from ..evaluation.htmlreport import write_html

    try:
        loaded = load_report(report)
    except CrmpilotError as exc:
        _fail(exc)
    _out.print(str(write_html(loaded, output or report.with_suffix(".html"))))


def _with_llm(
    label: str, total: int, work: Callable[[LLMClient, Callable[[int], None]], Awaitable[R]]
) -> tuple[R, str]:
    """Run ``work(client, advance)`` with the client of the CRMPILOT_LLM_* settings (no response cache) under a
    progress bar of ``total`` steps; returns its result and the provider's name. Bad settings exit 1."""
    from ..llm.factory import build_llm_client
    from ..llm.settings import LLMSettings

    try:
        settings = LLMSettings(cache="off")
    except ValidationError as exc:  # CRMPILOT_LLM_* settings that do not parse
        _err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from exc
    client = build_llm_client(settings)

    async def go() -> R:
        try:
            with _progress() as progress:
                bar = progress.add_task(label, total=total)
                return await work(client, lambda n: progress.advance(bar, n))
        finally:
            await client.aclose()

    return asyncio.run(go()), settings.resolved_provider


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_err,
    )


def _fail(exc: CrmpilotError) -> NoReturn:
    _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
    raise typer.Exit(1) from exc
