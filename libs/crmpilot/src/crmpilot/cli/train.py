"""`crmpilot train`: teach the local model your categories from closed cases (a calibrated, versioned head).

Reads labelled history (a CSV/JSONL file or a warehouse query), embeds each
ticket with the embedded model, fits a logistic regression on the embeddings
(with ``--features hybrid``, the default, a second one on the tickets' TF-IDF
word and character n-grams, the two mixed),
calibrates its confidence on a dev split (temperature scaling) and writes the
artefact ``<out>/head-<sha12>/``. Exit codes: 0 trained, 1 the data cannot
train a head (unreadable, too few examples, database unreachable).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
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
from rich.table import Table

from ..errors import CrmpilotError

__all__ = ["app"]

_HELP = """Train a ticket category head for the local provider from labelled history.

Input: --data FILE (CSV with a header row, or JSONL), --sql QUERY (run on
CRMPILOT_DATABASE_URL) or --soql QUERY (run on the CRM through simple-salesforce,
CRMPILOT_SALESFORCE_*, every page). Text columns: `text`, or `subject` and/or
`description`; label column: `label`, `category`, `intent` or `final_category`
(or --label-column; SOQL field names match without case).

Each ticket is embedded as the local provider embeds it, a logistic regression
is fitted on the embeddings (--features hybrid, the default: and another on the
ticket's TF-IDF word and character n-grams, their logits mixed with weights
fitted on the dev split; --features embedding: the embeddings alone), and a
temperature is fitted on a held-out dev split so that a confidence of 0.8
means right about 8 times in 10; hybrid heads are then refitted on every
example (--no-refit to keep the dev split out). An out-of-scope gate is
fitted on the same dev split (--no-gate to skip): a ticket whose nearest
training example is less similar than the bound that --gate-pass-rate (0.95)
of the dev tickets reach is out of scope, and its category is never applied
nor suggested. The artefact (weights, labels, temperature, gate, dev metrics,
training data hash, created time) is written to OUT/head-<sha12>/; its id
goes into every result's provenance.

Use it:  CRMPILOT_LLM_LOCAL_HEAD=OUT/head-<sha12>  (services and `crmpilot eval run`)

For an enum field of a declared enrichment (CRMPILOT_ENRICHMENTS_DIR), give
--enrichment NAME --field F: the labels must be values of that field (its
descriptions name them), and the head is used with
CRMPILOT_LLM_LOCAL_HEADS='{"NAME.F": "OUT/head-<sha12>"}'.

Example:  crmpilot train --data closed_cases.csv --out heads/
          crmpilot train --sql "select subject, description, category from warehouse.closed_cases" --out heads/
          crmpilot train --soql "SELECT Subject, Description, AI_Category__c FROM Case WHERE IsClosed = true" \\
                         --label-column AI_Category__c --out heads/
          crmpilot train --enrichment ticket_type --field case_reason --data closed_cases.csv --out heads/
"""

app = typer.Typer(help=_HELP, invoke_without_command=True, subcommand_metavar="", pretty_exceptions_show_locals=False)

_out = Console()
_err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def train(
    data: Annotated[Path | None, typer.Option("--data", help="Labelled CSV or JSONL file.", dir_okay=False)] = None,
    sql: Annotated[
        str | None, typer.Option("--sql", help="Query returning subject/description (or text) and the label.")
    ] = None,
    soql: Annotated[
        str | None,
        typer.Option(
            "--soql",
            help="SOQL query on the CRM (CRMPILOT_SALESFORCE_*) returning Subject, Description and --label-column.",
        ),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option("--label-column", help="Label column name (default: label, category, intent, final_category)."),
    ] = None,
    categories: Annotated[
        Path | None,
        typer.Option(
            "--categories",
            help="JSON taxonomy (names, or {name, description, queue}); orders the labels and gives queues.",
            dir_okay=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to write head-<sha12>/ into.", file_okay=False)] = Path(
        "heads"
    ),
    dev_fraction: Annotated[
        float, typer.Option("--dev-fraction", min=0.01, max=0.9, help="Share held out for calibration and dev metrics.")
    ] = 0.2,
    features: Annotated[
        str,
        typer.Option(
            "--features",
            help="hybrid (embedding + TF-IDF n-grams, format crmpilot.head/2) or embedding (embedding only, "
            "crmpilot.head/1).",
        ),
    ] = "hybrid",
    c: Annotated[
        float | None,
        typer.Option(
            "--c",
            min=1e-6,
            help="Inverse regularisation strength of the logistic regression (default: 30 for embedding, the hybrid "
            "default for hybrid).",
        ),
    ] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="After calibrating on the dev split, fit again on every example (default: on for hybrid, off for "
            "embedding).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/dev split.")] = 0,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate/--no-gate",
            help="Fit the out-of-scope gate (format crmpilot.head/3); --no-gate: a /1 or /2 head as before.",
        ),
    ] = True,
    gate_pass_rate: Annotated[
        float,
        typer.Option("--gate-pass-rate", min=0.5, max=1.0, help="Share of in-scope dev tickets the gate lets through."),
    ] = 0.95,
    limit: Annotated[int | None, typer.Option("--limit", min=2, help="Use only the first N rows.")] = None,
    enrichment: Annotated[
        str | None, typer.Option("--enrichment", help="A declared enrichment whose enum --field the head answers.")
    ] = None,
    field: Annotated[
        str | None, typer.Option("--field", help="The enum output of --enrichment; its values are the labels.")
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            dir_okay=False,
            help="Also write the setting that uses the head to this file, as shell (`set -a; . FILE` reads it).",
        ),
    ] = None,
) -> None:
    from ..evaluation import (
        HYBRID,
        TrainOptions,
        load_categories,
        read_labelled,
        read_soql,
        read_sql,
        train_head,
    )
    from ..llm.local import Encoder

    if sum(x is not None for x in (data, sql, soql)) != 1:
        _err.print("give exactly one of --data FILE, --sql QUERY or --soql QUERY (see `crmpilot train --help`)")
        raise typer.Exit(2)
    if features not in ("hybrid", "embedding"):
        _err.print(f"--features must be hybrid or embedding, not {escape(features)!r}")
        raise typer.Exit(2)
    try:
        if data is not None:
            dataset = read_labelled(data, label_column=label_column)
        elif sql is not None:
            dataset = read_sql(sql, label_column=label_column)
        else:
            assert soql is not None  # exactly one of the three, checked above
            with _progress() as progress:
                reading = progress.add_task("reading the CRM", total=None)
                dataset = read_soql(
                    soql,
                    label_column=label_column,
                    progress=lambda done, total: progress.update(reading, completed=done, total=total),
                )
        dataset = dataset.first(limit)
        taxonomy = load_categories(categories) if categories is not None else None
        if (enrichment is None) != (field is None):
            _err.print("give --enrichment and --field together")
            raise typer.Exit(2)
        if enrichment is not None and field is not None:
            taxonomy = _field_values(enrichment, field)
        base = HYBRID if features == "hybrid" else TrainOptions()
        options = replace(
            base,
            dev_fraction=dev_fraction,
            c=base.c if c is None else c,
            refit=base.refit if refit is None else refit,
            seed=seed,
            gate=gate,
            gate_pass_rate=gate_pass_rate,
        )
        _out.print(
            f"{len(dataset)} labelled tickets, {len(dataset.labels)} labels from {escape(dataset.source)}"
            + (f" ({dataset.skipped} rows without text or label skipped)" if dataset.skipped else ""),
            soft_wrap=True,
        )
        with _progress() as progress:
            task = progress.add_task("embedding", total=len(dataset))
            head = train_head(
                dataset,
                encoder=Encoder(),
                options=options,
                categories=taxonomy,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        folder = head.save(out)
    except CrmpilotError as exc:
        _fail(exc)
    dev = head.meta["metrics"]["dev"]
    table = Table(title=f"trained {head.id}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    training = head.meta["training"]
    for k, v in [
        ("artefact", str(folder)),
        ("labels", str(len(head.labels))),
        ("features", "embedding + TF-IDF n-grams" + f" ({head.lexical.size} terms)" if head.lexical else "embedding"),
        (
            "examples",
            f"{training['train']} train + {training['dev']} dev"
            + (" (refitted on all after calibration)" if training.get("refit") else ""),
        ),
        ("dev accuracy", f"{dev['accuracy']:.4f}"),
        ("dev macro-F1", f"{dev['macro_f1']:.4f}"),
        ("temperature", f"{head.temperature:.4f}"),
        ("dev log-loss", f"{dev['log_loss_before']:.4f} → {dev['log_loss_after']:.4f} after scaling"),
        ("dev ECE", f"{dev['ece_before']:.4f} → {dev['ece_after']:.4f} after scaling"),
        ("out-of-scope gate", _gate_line(head, options)),
        ("data sha256", training["data_sha256"]),
    ]:
        table.add_row(k, escape(v))
    _out.print(table)
    if enrichment is not None:
        name, value = "CRMPILOT_LLM_LOCAL_HEADS", json.dumps({f"{enrichment}.{field}": str(folder.resolve())})
    else:
        name, value = "CRMPILOT_LLM_LOCAL_HEAD", str(folder.resolve())
    setting = f"{name}={shlex.quote(value)}"
    _out.print(f"use it: {escape(setting)}", soft_wrap=True)
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(setting + "\n", encoding="utf-8")


def _gate_line(head: Any, options: Any) -> str:
    if head.gate is None:
        return (
            "none (--no-gate)" if not options.gate else f"none: fewer than {options.gate_min_dev} dev tickets to fit it"
        )
    fitted = head.gate.meta.get("dev", {})
    return (
        f"nearest training example below {head.gate.bound:.4f} is out of scope "
        f"({fitted.get('pass_rate', float('nan')):.3f} of {fitted.get('n', '?')} dev tickets pass; "
        f"{head.gate.size} examples kept)"
    )


def _field_values(enrichment: str, field: str) -> tuple[Any, ...]:
    """The values of an enum output as a taxonomy (name, description): the labels a head for it may learn."""
    from ..enrichments import load_registry
    from ..enrichments.spec import EnumOutput
    from ..tasks.taxonomy import Category

    spec = load_registry().get(enrichment)
    out = spec.asked.get(field)  # a derived enum is set by a hook: no head answers it
    if not isinstance(out, EnumOutput):
        enums = [n for n, o in spec.asked.items() if isinstance(o, EnumOutput)]
        _err.print(f"{enrichment} has no enum output {field!r} the model answers (those: {', '.join(enums) or 'none'})")
        raise typer.Exit(2)
    return tuple(Category(value, meaning, "general") for value, meaning in out.values.items())


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
    )


def _fail(exc: CrmpilotError) -> NoReturn:
    _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
    raise typer.Exit(1) from exc
