"""The `crmpilot` operator CLI: one command, a sub-command per concern."""

from __future__ import annotations

import typer

from . import crm, db, demo, enrichments, eval, ops, privacy, prompts, report, schemas, topics, train

app = typer.Typer(
    name="crmpilot",
    help="Operate crmpilot: topics, database, schemas, enrichments, dead-letter topics and the demo.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(schemas.app, name="schemas")
app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(demo.app, name="demo")
app.add_typer(prompts.app, name="prompts")
app.add_typer(enrichments.app, name="enrichments")
app.add_typer(report.app, name="report")
app.add_typer(crm.app, name="crm")
app.add_typer(train.app, name="train")
app.add_typer(eval.app, name="eval")
app.add_typer(ops.dlq_app, name="dlq")
app.command("status")(ops.status)
app.command("lag")(ops.lag)
app.command("produce")(ops.produce)
app.command("trace")(ops.trace)
app.command("erase")(privacy.erase)
