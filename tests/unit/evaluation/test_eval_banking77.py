"""The Banking77 entry: says so and exits 0 without the dataset; runs end to end on a dataset of the same shape.

The run uses the word-hash stand-in model: what is tested is the procedure (split, heads, end-to-end
runs, summary), not the figures, which need the real model and the real data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_testkit import TICKETS, fake_encoder, write_csv

from crmpilot.evaluation import banking77


def test_absent_dataset_is_reported_and_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert banking77.main(["--data-dir", str(tmp_path / "nowhere")]) == 0
    assert "dataset not found at" in capsys.readouterr().out


def test_a_small_dataset_of_the_same_shape_runs_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "b77"
    data.mkdir()
    write_csv(data / "train.csv")
    (data / "categories.json").write_text(json.dumps(sorted(TICKETS)))
    work = tmp_path / "work"
    args = [
        "--data-dir",
        str(data),
        "--workdir",
        str(work),
        "--train",
        "0",
        "--test",
        "6",
        "--few-shot",
        "3",
        "--e2e",
        "4",
        "--concurrency",
        "2",
    ]
    assert banking77.main(args, encoder_factory=fake_encoder) == 0
    summary = json.loads((work / "summary.json").read_text())
    assert (summary["train"], summary["test"]) == (18, 6)
    names = [h["name"].split(",")[0] for h in summary["heads"]]
    assert names == ["zero-shot (label names)", "trained", "trained", "hybrid", "hybrid", "hybrid", "few-shot 3/label"]
    assert set(summary["end_to_end"]) == {"zero-shot", "trained", "hybrid", "trained-single", "hybrid-single"}
    assert (work / "heads" / summary["head"] / "head.json").is_file()
    hybrid_doc = json.loads((work / "heads" / summary["hybrid"]["head"] / "head.json").read_text())
    assert (
        hybrid_doc["format"] == "crmpilot.head/2" and hybrid_doc["lexical"]["terms"] == summary["hybrid"]["terms"] > 0
    )
    assert (work / "reports" / "banking77-trained.html").is_file()
    assert (work / "train.csv").read_text().startswith("text,category\n")


def test_cross_validation_tests_every_row_once_and_reports_each_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "b77"
    data.mkdir()
    write_csv(data / "train.csv")
    (data / "categories.json").write_text(json.dumps(sorted(TICKETS)))
    work = tmp_path / "work"
    assert (
        banking77.main(["--data-dir", str(data), "--workdir", str(work), "--folds", "3"], encoder_factory=fake_encoder)
        == 0
    )
    cv = json.loads((work / "cv.json").read_text())
    assert cv["folds"] == 3 and cv["options"]["features"] == "hybrid"
    assert sum(int(f["name"].split("(")[1].split()[0]) for f in cv["per_fold"]) == cv["rows"] == 24
    accuracy, sd = cv["mean_sd"]["accuracy"]
    assert accuracy == pytest.approx(sum(f["accuracy"] for f in cv["per_fold"]) / 3) and sd >= 0
    assert "mean ± sd" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        banking77.main(["--data-dir", str(data), "--folds", "1"])


def test_holding_whole_intents_out_measures_what_their_queries_would_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "b77"
    data.mkdir()
    write_csv(data / "train.csv")
    (data / "categories.json").write_text(json.dumps(sorted(TICKETS)))
    work, cache = tmp_path / "work", tmp_path / "cache"
    args = ["--data-dir", str(data), "--workdir", str(work), "--holdout-intents", "1", "--seed", "3", "--test", "0.5",
            "--e2e", "12", "--concurrency", "2", "--cache-dir", str(cache)]  # fmt: skip
    assert banking77.main(args, encoder_factory=fake_encoder) == 0
    summary = json.loads((work / "holdout.json").read_text())
    [held] = summary["held_out_intents"]
    assert held in TICKETS and summary["seed"] == summary["split_seed"] == 3
    assert (summary["test"], summary["test_held_out"]) == (12, 4) and summary[
        "train"
    ] == 8  # 12 test rows, 4 of the held-out intent
    names = [r["name"] for r in summary["rows"]]
    assert names[0] == "hybrid, no gate" and names[-2:] == [
        "zero-shot (in-scope names), no bound",
        "zero-shot, bound 0.8",
    ]
    assert all(0 <= r["oos_auto"] <= r["oos_suggest"] <= 1 for r in summary["rows"])
    assert summary["end_to_end"]["n"] == 4 and summary["end_to_end"]["labels"] == ["__unknown__"]
    test_csv = (work / "test.csv").read_text()
    assert "__unknown__" in test_csv and held not in test_csv and held not in (work / "train.csv").read_text()
    assert {c["name"] for c in json.loads((work / "categories.json").read_text())} == set(TICKETS) - {held}
    [cached] = cache.iterdir()  # the whole file's embeddings, reused by a second run
    assert (
        banking77.main(args, encoder_factory=fake_encoder) == 0
        and "embeddings from the cache" in capsys.readouterr().out
    )
    assert list(cache.iterdir()) == [cached]
    with pytest.raises(SystemExit):
        banking77.main([*args, "--folds", "2"])
