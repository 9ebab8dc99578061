"""Labelled data: CSV and JSONL, column detection, skipped rows, taxonomies, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmpilot.evaluation import (
    DatasetError,
    check_labels,
    load_categories,
    read_labelled,
)


def test_csv_with_subject_and_description_builds_the_provider_text(tmp_path: Path) -> None:
    p = tmp_path / "cases.csv"
    p.write_text(
        "subject,description,category\nCard declined,Twice at the shop,Payments\n,,Payments\nNo label,text,\n",
        encoding="utf-8",
    )
    data = read_labelled(p)
    assert len(data) == 1 and data.skipped == 2
    assert data.items[0].text == "Card declined\nTwice at the shop"
    assert data.items[0].payload == {
        "subject": "Card declined",
        "description": "Twice at the shop",
        "origin": "unknown",
        "is_vip": False,
    }
    assert data.labels == ("Payments",) and len(data.sha256) == 64


def test_jsonl_with_text_and_a_named_label_column(tmp_path: Path) -> None:
    p = tmp_path / "cases.jsonl"
    p.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [{"text": "Где карта?", "final": "card_arrival"}, {"text": "курс", "final": "rate"}]
        )
        + "\n",
        encoding="utf-8",
    )
    data = read_labelled(p, label_column="final")
    assert [(t.text, t.label) for t in data.items] == [("Где карта?", "card_arrival"), ("курс", "rate")]
    assert data.first(1).items == data.items[:1]


def test_the_hash_follows_the_rows(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("text,label\nx,1\ny,2\n")
    b.write_text("text,label\ny,2\nx,1\n")
    assert read_labelled(a).sha256 != read_labelled(b).sha256
    assert read_labelled(a).sha256 == read_labelled(a).sha256


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("text,foo\nx,y\n", ".csv", "no label column"),
        ("id,label\n1,a\n", ".csv", "no text column"),
        ('{"text": "x", "label": "a"}\nnot json\n', ".jsonl", r"\.jsonl:2: not JSON"),
        ("text,label\n,\n", ".csv", "no labelled rows"),
    ],
)
def test_bad_files_raise_a_dataset_error(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    p = tmp_path / f"bad{suffix}"
    p.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_labelled(p)
    with pytest.raises(DatasetError, match="no such file"):
        read_labelled(tmp_path / "missing.csv")


def test_categories_from_names_objects_or_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text('["card_arrival", "Billing"]')
    cats = load_categories(p)
    assert (cats[0].name, cats[0].description, cats[0].queue) == ("card_arrival", "card arrival", "general")
    assert cats[1].queue == "billing"  # a default category keeps its queue
    p.write_text('[{"name": "vip", "description": "very important", "queue": "gold"}]')
    assert load_categories(p)[0].queue == "gold"
    p.write_text('{"refund": "money back"}')
    assert load_categories(p)[0].description == "money back"
    with pytest.raises(DatasetError, match="labels outside the taxonomy: nope"):
        check_labels(["refund", "nope"], load_categories(p), "data.csv")
    p.write_text('["a", "a"]')
    with pytest.raises(DatasetError, match="unique"):
        load_categories(p)
