"""`crmpilot train --sql` on the real PostgreSQL of the local stack: same data, same hash, same head as from a file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crmpilot.cli import train as train_cli
from crmpilot.evaluation import DatasetError, read_labelled, read_sql

pytestmark = pytest.mark.integration

ROWS = [
    ("Card", "my new card has not arrived yet", "card_arrival"),
    ("Card", "when will my card arrive", "card_arrival"),
    ("Card", "card still not delivered after a week", "card_arrival"),
    ("Card", "карта до сих пор не пришла", "card_arrival"),
    ("Stolen", "my card was stolen yesterday", "lost_or_stolen_card"),
    ("Stolen", "I lost my card, please block it", "lost_or_stolen_card"),
    ("Stolen", "someone stole my wallet with the card", "lost_or_stolen_card"),
    ("Stolen", "у меня украли карту", "lost_or_stolen_card"),
]


def _query() -> str:
    def lit(s: str) -> str:
        return "'" + s.replace("'", "''") + "'"

    values = ", ".join(f"({i}, {lit(s)}, {lit(d)}, {lit(c)})" for i, (s, d, c) in enumerate(ROWS))
    return (
        f"select subject, description, category from (values {values}) as closed_cases(n, subject, description, "
        "category) order by n"
    )


def test_train_from_a_warehouse_query_equals_training_from_the_same_rows_in_a_file(
    database_url: str, tmp_path: Path
) -> None:
    data = read_sql(_query(), database_url=database_url)
    assert [(t.subject, t.description, t.label) for t in data.items] == ROWS

    file = tmp_path / "closed_cases.csv"
    with file.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["subject", "description", "category"])
        w.writerows(ROWS)
    assert read_labelled(file).sha256 == data.sha256

    root = typer.Typer()
    root.add_typer(train_cli.app, name="train")
    env = {"CRMPILOT_DATABASE_URL": database_url, "COLUMNS": "200"}
    from_sql = CliRunner().invoke(
        root, ["train", "--sql", _query(), "--out", str(tmp_path / "a"), "--dev-fraction", "0.25"], env=env
    )
    from_file = CliRunner().invoke(
        root, ["train", "--data", str(file), "--out", str(tmp_path / "b"), "--dev-fraction", "0.25"], env=env
    )
    assert from_sql.exit_code == 0 and from_file.exit_code == 0, from_sql.output + from_file.output
    (a,) = (tmp_path / "a").iterdir()
    (b,) = (tmp_path / "b").iterdir()
    assert a.name == b.name  # same rows, same text construction -> the same head
    assert json.loads((a / "head.json").read_text())["training"]["source"] == "sql query"


def test_query_and_connection_failures_are_dataset_errors(database_url: str) -> None:
    with pytest.raises(DatasetError, match="the query failed"):
        read_sql("select subject from no_such_table_for_eval", database_url=database_url)
    with pytest.raises(DatasetError, match="no label column"):
        read_sql("select 'x' as subject", database_url=database_url)
    with pytest.raises(DatasetError, match="cannot connect"):
        read_sql("select 1", database_url="postgresql://nobody:wrong@127.0.0.1:1/none")
