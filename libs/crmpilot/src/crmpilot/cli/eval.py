"""`crmpilot eval`: measure a task on labelled data with any provider, and compare runs.

``run`` sends every labelled ticket through the shared LLM client (local
zero-shot, a local trained head, or an OpenAI-compatible endpoint from
``CRMPILOT_LLM_*``), prints accuracy, macro-F1, per-class precision/recall, top
confusions, calibration (reliability table, ECE), latency and cost, and writes
``<name>.json`` and a self-contained ``<name>.html``. Items labelled
``__unknown__`` (or with a label given to ``--oos-label``) are out of scope:
the report counts how many of them would be auto-applied or suggested, and
how many the model flagged. ``compare`` prints two JSON reports side by side
with deltas. ``banking77`` runs the Banking77 benchmark
(:mod:`crmpilot.evaluation.banking77`, e.g. ``--holdout-intents 10 --seed 0``
for the out-of-scope figures). Exit codes: 0 done, 1 bad input (data,
categories, prompt, head, report file).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

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

__all__ = ["app"]

app = typer.Typer(
    help="Measure classify_ticket on labelled data (any provider, prompt version or trained head) and compare runs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_out = Console()
_err = Console(stderr=True)


class Task(str, Enum):
    classify_ticket = "classify_ticket"


class ProviderChoice(str, Enum):
    local = "local"
    openai = "openai"


@app.command()
def run(
    data: Annotated[Path, typer.Option("--data", help="Labelled CSV or JSONL (text or subject/description; label or category).", dir_okay=False)],
    task: Annotated[Task, typer.Option("--task", help="The task to measure.")] = Task.classify_ticket,
    categories: Annotated[Path | None, typer.Option("--categories", help="JSON taxonomy (names, or {name, description, queue}); default: the head's labels, else the built-in taxonomy.", dir_okay=False)] = None,
    provider: Annotated[ProviderChoice | None, typer.Option("--provider", help="Override CRMPILOT_LLM_PROVIDER.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Override CRMPILOT_LLM_MODEL (OpenAI-compatible endpoints).")] = None,
    head: Annotated[Path | None, typer.Option("--head", help="Trained head artefact for the local provider (default: CRMPILOT_LLM_LOCAL_HEAD, else zero-shot).")] = None,
    prompt_file: Annotated[Path | None, typer.Option("--prompt-file", help="Candidate system prompt with a {categories} placeholder.", dir_okay=False)] = None,
    prompt_version: Annotated[str | None, typer.Option("--prompt-version", help="Version label of the prompt (with --prompt-file: any label).")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Label column name.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Items in flight at once.")] = 8,
    bins: Annotated[int, typer.Option("--bins", min=2, max=50, help="Bins of the reliability table.")] = 10,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON and HTML reports.", file_okay=False)] = Path("eval-reports"),
    name: Annotated[str | None, typer.Option("--name", help="Report name (file stem); default: task-provider-head-time.")] = None,
    warmup: Annotated[bool, typer.Option("--warmup/--no-warmup", help="One untimed call first (loads the local model).")] = True,
    oos_label: Annotated[list[str] | None, typer.Option("--oos-label", help="A gold label that marks an item out of scope (repeatable; __unknown__ always does).")] = None,
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
    _out.print(f"{escape(setup.describe)} · {len(dataset)} items · prompt {escape(setup.spec.prompt.version)}", soft_wrap=True)

    async def go() -> EvalReport:
        try:
            with _progress() as progress:
                bar = progress.add_task(task.value, total=len(dataset))
                return await evaluate(
                    setup.client, setup.spec, dataset, name=report_name, head=setup.head, concurrency=concurrency, bins=bins,
                    warmup=warmup, on_item=lambda _: progress.advance(bar), out_of_scope=out_of_scope,
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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=_err
    )


def _fail(exc: CrmpilotError) -> NoReturn:
    _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
    raise typer.Exit(1) from exc
