"""Reproduce the Banking77 figures of docs/evaluation.md: zero-shot vs trained heads, calibration, speed.

``python -m crmpilot.evaluation.banking77 [--train 2000] [--test 1000] [--few-shot 10] [--e2e 300]``

Reads ``train.csv`` and ``categories.json`` from ``--data-dir`` (default
``$CRMPILOT_BANKING77_DIR``, else ``../shared/datasets/banking77``); when they
are absent it says so and exits 0. Banking77 (CC BY 4.0) is read from there and
never copied into the repository; the splits are written to ``--workdir`` (a
temporary folder by default) so the printed ``crmpilot train`` / ``crmpilot
eval`` commands reproduce the same run from the CLI.

1. Stratified, seeded split: ``--test`` held-out items, then ``--train`` items
   from the rest (the test part is never used for training or calibration).
2. Every train and test text is embedded once (batched; gives the encoder's
   throughput).
3. Heads on those vectors: zero-shot (label names as descriptions), the
   trained head (embedding only) and the hybrid head (embedding + TF-IDF
   n-grams of the text), each before and after temperature scaling, and a
   few-shot head (``--few-shot`` examples per label from the train part).
4. End to end, through the LLM client and the local provider exactly as
   ``crmpilot eval run`` does: the first ``--e2e`` test items with the
   zero-shot, the trained and the hybrid head (latency p50/p95, throughput),
   and single calls (concurrency 1) for the trained heads' per-ticket latency.

``--folds K`` instead cross-validates ``crmpilot train``'s default (hybrid)
head over every row: K stratified, seeded folds, each held out once while the
head is trained on the others (dev split, temperature, mix and refit inside
the training part, as always); per-fold and mean figures, ``cv.json`` in the
workdir. A 1,000-query test part measures accuracy to about ±1.7 points (95%);
K folds of the whole file use all 10,003 queries as test items.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from crmpilot.evaluation.calibration import log_loss
from crmpilot.evaluation.dataset import Dataset, read_labelled
from crmpilot.evaluation.htmlreport import write_html
from crmpilot.evaluation.metrics import classification_metrics, reliability, selective
from crmpilot.evaluation.report import EvalReport
from crmpilot.evaluation.runner import evaluate
from crmpilot.evaluation.taxonomy import load_categories
from crmpilot.evaluation.training import HYBRID, TrainOptions, embed_texts, fit_head
from crmpilot.llm.local.embedder import EmbeddingBatcher, Encoder, Vectors
from crmpilot.llm.local.heads import TicketClassifierHead, ZeroShotHead, head_proba
from crmpilot.llm.local.trained import TrainedHead
from crmpilot.tasks.classify_ticket import classify_ticket_spec
from crmpilot.tasks.taxonomy import Category

__all__ = ["main"]

DEFAULT_DIR = Path("../shared/datasets/banking77")

_out = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True, slots=True)
class HeadFigures:
    name: str
    head_id: str
    accuracy: float
    macro_f1: float
    ece: float
    log_loss: float
    accuracy_at_08: float | None
    coverage_at_08: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _split(dataset: Dataset, *, train: int | None, test: int, seed: int) -> tuple[Dataset, Dataset]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(dataset))
    labels = [t.label for t in dataset.items]
    rest, held = train_test_split(idx, test_size=test, random_state=seed, stratify=labels)
    if train is not None and train < len(rest):
        rest, _ = train_test_split(rest, train_size=train, random_state=seed, stratify=[labels[i] for i in rest])
    # train_test_split returns the indices shuffled (seeded): kept in that order, so the first N test
    # items (the end-to-end subset, `crmpilot eval run --limit N`) span the labels, unlike the source
    # file, which is grouped by label.
    def pick(ids: np.ndarray, part: str) -> Dataset:
        return Dataset(tuple(dataset.items[i] for i in ids), f"{dataset.source}#{part}")

    return pick(rest, "train"), pick(held, "test")


def _few_shot(dataset: Dataset, k: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, t in enumerate(dataset.items):
        by_label.setdefault(t.label, []).append(i)
    chosen: list[int] = []
    for label in sorted(by_label):
        ids = by_label[label]
        chosen += sorted(rng.choice(ids, size=min(k, len(ids)), replace=False).tolist())
    return sorted(chosen)


def _figures(name: str, head: TicketClassifierHead, vectors: Vectors, texts: Sequence[str], gold: Sequence[str]) -> HeadFigures:
    probs = head_proba(head, vectors, texts)
    top = probs.argmax(axis=1)
    predicted = [head.labels[int(i)] for i in top]
    conf = probs[np.arange(len(top)), top]
    correct = np.array([p == g for p, g in zip(predicted, gold, strict=True)])
    quality = classification_metrics(list(gold), predicted)
    index = {label: i for i, label in enumerate(head.labels)}
    nll = log_loss(np.log(np.clip(probs, 1e-12, 1.0)), [index[g] for g in gold])
    at = selective(conf, correct, (0.8,))[0]
    return HeadFigures(
        name, head.id, quality.accuracy, quality.macro_f1, reliability(conf, correct).ece, nll, at.accuracy, at.coverage
    )


def _cross_validate(
    full: Dataset, categories: tuple[Category, ...], encoder: Encoder, *, folds: int, options: TrainOptions, work: Path
) -> int:
    """K-fold figures of the head ``options`` trains: every row is a test item once."""
    from sklearn.model_selection import StratifiedKFold

    texts, labels = [t.text for t in full.items], [t.label for t in full.items]
    _out.print(f"Banking77: {len(texts)} rows, {len(categories)} labels; {folds}-fold cross-validation of the {options.features} head (seed {options.seed}); workdir {work}")
    with _progress() as progress:
        bar = progress.add_task("embedding", total=len(texts))
        vectors = embed_texts(texts, encoder, progress=lambda d, n: progress.update(bar, completed=d))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=options.seed)
    rows: list[HeadFigures] = []
    for k, (train, test) in enumerate(split.split(texts, labels)):
        _out.print(f"fold {k + 1}/{folds}: training on {len(train)}, testing on {len(test)}")
        head = fit_head(
            vectors[train], [labels[i] for i in train], encoder=encoder.model_version, options=options,
            categories=categories, texts=[texts[i] for i in train],
        )  # fmt: skip
        rows.append(_figures(f"fold {k + 1} ({len(test)} test items)", head, vectors[test], [texts[i] for i in test], [labels[i] for i in test]))
    table = _figures_table(f"Banking77, {folds}-fold cross-validation, {options.features} head", "fold", rows)
    stats = {}
    for f in ("accuracy", "macro_f1", "ece", "log_loss", "accuracy_at_08", "coverage_at_08"):
        values = [v for r in rows if (v := getattr(r, f)) is not None]
        stats[f] = (float(np.mean(values)), float(np.std(values, ddof=1))) if len(values) > 1 else (float("nan"), float("nan"))
    table.add_row("mean ± sd", *(f"{m:.4f} ± {sd:.4f}" for m, sd in stats.values()))
    _out.print(table)
    summary = {"folds": folds, "rows": len(texts), "encoder": encoder.model_version, "options": {"features": options.features, "c": options.c, "seed": options.seed},
               "per_fold": [r.as_dict() for r in rows], "mean_sd": stats}  # fmt: skip
    (work / "cv.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _out.print(f"summary: {work / 'cv.json'}")
    return 0


def _write_split(dataset: Dataset, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for t in dataset.items:
            writer.writerow([t.description, t.label])


async def _end_to_end(
    head: TicketClassifierHead | None,
    categories: tuple[Category, ...],
    dataset: Dataset,
    *,
    name: str,
    concurrency: int,
    encoder: Callable[[], Encoder],
) -> EvalReport:
    from crmpilot.llm.factory import build_llm_client
    from crmpilot.llm.local import LocalProvider
    from crmpilot.llm.settings import LLMSettings

    local = LocalProvider(head=head, batcher=EmbeddingBatcher(encoder()))
    settings = LLMSettings(provider="local", cache="off", max_concurrency=concurrency)
    client = build_llm_client(settings, local_provider_factory=lambda: local)
    try:
        return await evaluate(
            client, classify_ticket_spec(categories), dataset, name=name, head=head.id if head else "zero-shot", concurrency=concurrency
        )
    finally:
        await client.aclose()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_out)


def main(argv: Sequence[str] | None = None, *, encoder_factory: Callable[[], Encoder] = Encoder) -> int:
    """Run the benchmark; ``encoder_factory`` lets tests use a stand-in model."""
    parser = argparse.ArgumentParser(prog="python -m crmpilot.evaluation.banking77", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CRMPILOT_BANKING77_DIR", DEFAULT_DIR)))
    parser.add_argument("--train", type=int, default=2000, help="training items (0: all the rest)")
    parser.add_argument("--test", type=int, default=1000, help="held-out items")
    parser.add_argument("--few-shot", type=int, default=10, help="examples per label of the few-shot head (0: skip)")
    parser.add_argument("--e2e", type=int, default=300, help="test items run end to end through the provider (0: skip)")
    parser.add_argument("--concurrency", type=int, default=32, help="end-to-end items in flight")
    parser.add_argument("--c", type=float, default=TrainOptions().c, help="inverse regularisation of the logistic regression")
    parser.add_argument("--hybrid-c", type=float, default=HYBRID.c, help="the same for the hybrid head's two regressions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where splits, head and reports go (default: a temp folder)")
    parser.add_argument("--folds", type=int, default=0, help="instead: K-fold cross-validation of the hybrid head over every row (0: off)")
    args = parser.parse_args(argv)
    if args.folds == 1 or args.folds < 0:
        parser.error("--folds needs at least 2 folds (0: off)")

    data_dir: Path = args.data_dir
    if not (data_dir / "train.csv").is_file() or not (data_dir / "categories.json").is_file():
        print(f"dataset not found at {data_dir.resolve()} (expected train.csv and categories.json); nothing measured")
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crmpilot-banking77-"))
    work.mkdir(parents=True, exist_ok=True)
    categories = load_categories(data_dir / "categories.json")
    full = read_labelled(data_dir / "train.csv")
    if args.folds:
        return _cross_validate(full, categories, encoder_factory(), folds=args.folds, options=replace(HYBRID, c=args.hybrid_c, seed=args.seed), work=work)
    train, test = _split(full, train=args.train or None, test=args.test, seed=args.seed)
    _write_split(train, work / "train.csv")
    _write_split(test, work / "test.csv")
    _out.print(f"Banking77 from {data_dir}: {len(full)} rows, {len(categories)} labels; train {len(train)}, test {len(test)} (seed {args.seed}); workdir {work}")

    encoder = encoder_factory()
    encoder.encode(["warm up"], is_query=True)  # load the model outside the timings
    with _progress() as progress:
        bar = progress.add_task("embedding train", total=len(train))
        x_train = embed_texts([t.text for t in train.items], encoder, progress=lambda d, n: progress.update(bar, completed=d))
        bar = progress.add_task("embedding test", total=len(test))
        started = time.perf_counter()
        x_test = embed_texts([t.text for t in test.items], encoder, progress=lambda d, n: progress.update(bar, completed=d))
        encode_rate = len(test) / (time.perf_counter() - started)
    gold = [t.label for t in test.items]
    y_train = [t.label for t in train.items]
    t_train, t_test = [t.text for t in train.items], [t.text for t in test.items]

    options = TrainOptions(c=args.c, seed=args.seed)
    hybrid_options = replace(HYBRID, c=args.hybrid_c, seed=args.seed)
    provenance = {"source": str(work / "train.csv"), "data_sha256": read_labelled(work / "train.csv").sha256, "skipped_rows": 0}
    fit = partial(fit_head, x_train, y_train, encoder=encoder.model_version, categories=categories, provenance=provenance, texts=t_train)
    trained = fit(options=options)
    head_dir = trained.save(work / "heads")
    hybrid = fit(options=hybrid_options)
    hybrid_dir = hybrid.save(work / "heads")
    hybrid_dev_fit = fit(options=replace(hybrid_options, refit=False))  # before refitting on the dev part too
    zero_shot = asyncio.run(ZeroShotHead.build(categories, EmbeddingBatcher(encoder)))
    rows = [
        _figures("zero-shot (label names)", zero_shot, x_test, t_test, gold),
        _figures(f"trained, T=1 (uncalibrated), {len(train)} ex.", trained.with_temperature(1.0), x_test, t_test, gold),
        _figures(f"trained, T={trained.temperature:.3f} (calibrated), {len(train)} ex.", trained, x_test, t_test, gold),
        _figures(f"hybrid, T=1 (uncalibrated), fit part only, {len(train)} ex.", hybrid_dev_fit.with_temperature(1.0), x_test, t_test, gold),
        _figures(f"hybrid, T={hybrid_dev_fit.temperature:.3f} (calibrated), fit part only, {len(train)} ex.", hybrid_dev_fit, x_test, t_test, gold),
        _figures(f"hybrid, T={hybrid.temperature:.3f} (calibrated), refitted on all {len(train)} ex.", hybrid, x_test, t_test, gold),
    ]
    if args.few_shot:
        ids = _few_shot(train, args.few_shot, args.seed)
        few = fit_head(x_train[ids], [y_train[i] for i in ids], encoder=encoder.model_version, options=options, categories=categories)
        rows.append(_figures(f"few-shot {args.few_shot}/label, T={few.temperature:.3f}", few, x_test, t_test, gold))

    reports: dict[str, EvalReport] = {}
    if args.e2e:
        subset = test.first(args.e2e)
        (work / "reports").mkdir(exist_ok=True)
        for name, head in (("zero-shot", None), ("trained", trained), ("hybrid", hybrid)):
            _out.print(f"end to end: {name}, {len(subset)} items at concurrency {args.concurrency}")
            run = _end_to_end(head, categories, subset, name=f"banking77-{name}", concurrency=args.concurrency, encoder=encoder_factory)
            report = asyncio.run(run)
            report.save(work / "reports" / f"banking77-{name}.json")
            write_html(report, work / "reports" / f"banking77-{name}.html")
            reports[name] = report
        single = test.first(min(100, args.e2e))
        _out.print(f"end to end: trained, {len(single)} single calls (concurrency 1)")
        single_run = _end_to_end(trained, categories, single, name="banking77-trained-single", concurrency=1, encoder=encoder_factory)
        reports["trained-single"] = asyncio.run(single_run)
        _out.print(f"end to end: hybrid, {len(single)} single calls (concurrency 1)")
        single_run = _end_to_end(hybrid, categories, single, name="banking77-hybrid-single", concurrency=1, encoder=encoder_factory)
        reports["hybrid-single"] = asyncio.run(single_run)

    _print(rows, reports, encode_rate, {"trained": (trained, head_dir), "hybrid": (hybrid, hybrid_dir)})
    summary = {
        "data_dir": str(data_dir.resolve()),
        "train": len(train),
        "test": len(test),
        "seed": args.seed,
        "c": args.c,
        "encoder": encoder.model_version,
        "encode_items_per_s": encode_rate,
        "head": trained.id,
        "temperature": trained.temperature,
        "dev": trained.meta["metrics"]["dev"],
        "hybrid": {
            "head": hybrid.id,
            "c": args.hybrid_c,
            "mix": hybrid.meta["training"]["mix"],
            "terms": hybrid.lexical.size if hybrid.lexical else 0,
            "head_fit_part_only": hybrid_dev_fit.id,
            "temperature": hybrid.temperature,
            "dev": hybrid.meta["metrics"]["dev"],
        },
        "heads": [r.as_dict() for r in rows],
        "end_to_end": {
            k: {
                "items": r.quality.n,
                "accuracy": r.quality.accuracy,
                "latency_p50_ms": r.latency_ms.p50,
                "latency_p95_ms": r.latency_ms.p95,
                "items_per_s": r.throughput_per_s,
                "concurrency": r.run.concurrency,
            }
            for k, r in reports.items()
        },
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    cats = data_dir / "categories.json"
    _out.print("\nReproduce from the CLI (same split, same head id):", soft_wrap=True)
    for line in (
        f"crmpilot train --data {work}/train.csv --categories {cats} --features embedding --c {args.c:g} --seed {args.seed} --out {work}/heads",
        (
            f"crmpilot train --data {work}/train.csv --categories {cats} --features hybrid --c {args.hybrid_c:g} "
            f"--seed {args.seed} --out {work}/heads"
        ),
        f"crmpilot eval run --data {work}/test.csv --categories {cats} --provider local --head {head_dir} --out {work}/reports --name trained",
        f"crmpilot eval run --data {work}/test.csv --categories {cats} --provider local --head {hybrid_dir} --out {work}/reports --name hybrid",
        f"CRMPILOT_LLM_LOCAL_HEAD= crmpilot eval run --data {work}/test.csv --categories {cats} --provider local --out {work}/reports --name zero-shot",
        f"crmpilot eval compare {work}/reports/zero-shot.json {work}/reports/trained.json",
        f"crmpilot eval compare {work}/reports/trained.json {work}/reports/hybrid.json",
    ):
        _out.print(f"  {line}", soft_wrap=True, markup=False)
    _out.print(f"summary: {work}/summary.json", soft_wrap=True)
    return 0


def _figures_table(title: str, first: str, rows: list[HeadFigures]) -> Table:
    """One row per head (or fold): accuracy, macro-F1, ECE, log-loss, selective accuracy and coverage at 0.8."""
    table = Table(title=title)
    for col in (first, "accuracy", "macro-F1", "ECE", "log-loss", "acc. at conf ≥ 0.8", "coverage ≥ 0.8"):
        table.add_column(col, justify="left" if col == first else "right")
    for r in rows:
        at = "—" if r.accuracy_at_08 is None else f"{r.accuracy_at_08:.4f}"
        table.add_row(r.name, f"{r.accuracy:.4f}", f"{r.macro_f1:.4f}", f"{r.ece:.4f}", f"{r.log_loss:.3f}", at, f"{r.coverage_at_08:.3f}")
    return table


def _print(rows: list[HeadFigures], reports: dict[str, EvalReport], encode_rate: float, heads: dict[str, tuple[TrainedHead, Path]]) -> None:
    _out.print(_figures_table(f"Banking77 held-out test, {len(rows)} heads on the same embeddings", "head", rows))
    for name, (head, folder) in heads.items():
        dev = head.meta["metrics"]["dev"]
        _out.print(
            f"{name} head {head.id} ({folder}): dev n={dev['n']}, accuracy {dev['accuracy']:.4f}, T={head.temperature:.4f}, "
            f"dev ECE {dev['ece_before']:.4f} → {dev['ece_after']:.4f}, dev log-loss {dev['log_loss_before']:.3f} → {dev['log_loss_after']:.3f}",
            soft_wrap=True,
        )
    _out.print(f"encoder throughput (batches of 64, one process): {encode_rate:.1f} texts/s", soft_wrap=True)
    if reports:
        e2e = Table(title="end to end through the LLM client and the local provider")
        for col in ("run", "items", "concurrency", "accuracy", "latency p50 ms", "latency p95 ms", "items/s"):
            e2e.add_column(col, justify="left" if col == "run" else "right")
        for name, r in reports.items():
            e2e.add_row(
                name, str(r.quality.n), str(r.run.concurrency), f"{r.quality.accuracy:.4f}", f"{r.latency_ms.p50:.1f}", f"{r.latency_ms.p95:.1f}", f"{r.throughput_per_s:.1f}"
            )
        _out.print(e2e)


if __name__ == "__main__":
    sys.exit(main())
