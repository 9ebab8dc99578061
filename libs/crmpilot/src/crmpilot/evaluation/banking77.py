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
K folds of the whole file use all 10,003 queries as test items. With a gated
head (the default) each fold also gives the coverage and accuracy at 0.8
once the out-of-scope gate has capped the tickets it flags, and the share it
flags: the gate's cost on in-scope tickets.

``--holdout-intents K`` instead measures the out-of-scope gate the standard
way: a stratified, seeded test part (``--test``, e.g. ``0.3`` for 30 %) is
set aside; K whole intents (chosen with ``--seed`` from the sorted names) are
removed from training, so their test queries are out of scope; the default
(hybrid, gated) head is trained on the rest of the train part, with its dev
split, temperature and gate as ``crmpilot train`` fits them. Every test query
is scored with the gate off, at the fitted bound (``--gate-pass-rate``) and at
the other dev pass rates the artefact records, and zero-shot (the in-scope
names) with and without its bound: the in-scope queries' accuracy, coverage
and accuracy at the auto-apply (0.8) and suggest (0.5) thresholds, and the
held-out queries' shares reaching them. ``--e2e N`` runs the first N test
queries (held-out ones labelled ``__unknown__``) through ``crmpilot eval run``'s
code path to show the same figures in an eval report. ``holdout.json`` in the
workdir holds it all.

``--split-seed`` chooses the test part apart from the intents (default: ``--seed``).

``--cache-dir DIR`` keeps the embeddings of the whole file (``--folds``,
``--holdout-intents``) in ``DIR``, keyed by encoder version and data hash, so a
second run does not embed again.
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
from collections.abc import Callable, Iterable, Sequence
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
from crmpilot.evaluation.report import OOS_LABEL, EvalReport
from crmpilot.evaluation.runner import evaluate
from crmpilot.evaluation.taxonomy import load_categories
from crmpilot.evaluation.training import HYBRID, TrainOptions, embed_texts, fit_head
from crmpilot.llm.local.embedder import EmbeddingBatcher, Encoder, Vectors
from crmpilot.llm.local.heads import DEFAULT_MIN_SIMILARITY, TicketClassifierHead, ZeroShotHead, head_proba, scope_of
from crmpilot.llm.local.trained import ScopeGate, TrainedHead
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
    gated_accuracy_at_08: float | None = None
    """With the out-of-scope gate applied (a flagged ticket's confidence is 0); ``None`` without a gate."""
    gated_coverage_at_08: float | None = None
    flagged: float | None = None
    """Share of the (in-scope) test tickets the gate flags."""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _split(dataset: Dataset, *, train: int | None, test: float, seed: int) -> tuple[Dataset, Dataset]:
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


def _figures(
    name: str, head: TicketClassifierHead, vectors: Vectors, texts: Sequence[str], gold: Sequence[str]
) -> HeadFigures:
    probs = head_proba(head, vectors, texts)
    top = probs.argmax(axis=1)
    predicted = [head.labels[int(i)] for i in top]
    conf = probs[np.arange(len(top)), top]
    correct = np.array([p == g for p, g in zip(predicted, gold, strict=True)])
    quality = classification_metrics(list(gold), predicted)
    index = {label: i for i, label in enumerate(head.labels)}
    nll = log_loss(np.log(np.clip(probs, 1e-12, 1.0)), [index[g] for g in gold])
    at = selective(conf, correct, (0.8,))[0]
    gated: tuple[float | None, float | None, float | None] = (None, None, None)
    if (scope := scope_of(head, vectors)) is not None:
        outside = scope.outside
        g = selective(np.where(outside, 0.0, conf), correct, (0.8,))[0]
        gated = (g.accuracy, g.coverage, float(outside.mean()))
    return HeadFigures(
        name,
        head.id,
        quality.accuracy,
        quality.macro_f1,
        reliability(conf, correct).ece,
        nll,
        at.accuracy,
        at.coverage,
        *gated,
    )


def _embed_all(texts: Sequence[str], encoder: Encoder, cache_dir: Path | None, data_sha256: str) -> Vectors:
    """The ``query:`` embeddings of ``texts`` (the whole file), from ``cache_dir`` when there."""
    import hashlib

    path = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([encoder.model_version, data_sha256, len(texts)]).encode()).hexdigest()[:16]
        path = cache_dir / f"banking77-{key}.npy"
        if path.is_file():
            cached: Vectors = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                _out.print(f"embeddings from the cache: {path}")
                return cached
    with _progress() as progress:
        bar = progress.add_task("embedding", total=len(texts))
        vectors = embed_texts(texts, encoder, progress=lambda d, n: progress.update(bar, completed=d))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors, allow_pickle=False)
    return vectors


def _cross_validate(
    full: Dataset,
    categories: tuple[Category, ...],
    encoder: Encoder,
    *,
    folds: int,
    options: TrainOptions,
    work: Path,
    cache_dir: Path | None = None,
) -> int:
    """K-fold figures of the head ``options`` trains: every row is a test item once."""
    from sklearn.model_selection import StratifiedKFold

    texts, labels = [t.text for t in full.items], [t.label for t in full.items]
    _out.print(
        f"Banking77: {len(texts)} rows, {len(categories)} labels; {folds}-fold cross-validation of the "
        f"{options.features} head (seed {options.seed}); workdir {work}"
    )
    vectors = _embed_all(texts, encoder, cache_dir, full.sha256)
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=options.seed)
    rows: list[HeadFigures] = []
    for k, (train, test) in enumerate(split.split(texts, labels)):
        _out.print(f"fold {k + 1}/{folds}: training on {len(train)}, testing on {len(test)}")
        head = fit_head(
            vectors[train], [labels[i] for i in train], encoder=encoder.model_version, options=options,
            categories=categories, texts=[texts[i] for i in train],
        )  # fmt: skip
        rows.append(
            _figures(
                f"fold {k + 1} ({len(test)} test items)",
                head,
                vectors[test],
                [texts[i] for i in test],
                [labels[i] for i in test],
            )
        )
    table = _figures_table(f"Banking77, {folds}-fold cross-validation, {options.features} head", "fold", rows)
    stats = {}
    for f in _FIGURES:
        values = [v for r in rows if (v := getattr(r, f)) is not None]
        stats[f] = (
            (float(np.mean(values)), float(np.std(values, ddof=1))) if len(values) > 1 else (float("nan"), float("nan"))
        )
    table.add_row("mean ± sd", *(f"{m:.4f} ± {sd:.4f}" for m, sd in stats.values()))
    _out.print(table)
    summary = {
        "folds": folds,
        "rows": len(texts),
        "encoder": encoder.model_version,
        "options": {
            "features": options.features,
            "c": options.c,
            "seed": options.seed,
            "gate": options.gate,
            "gate_pass_rate": options.gate_pass_rate,
        },
        "per_fold": [r.as_dict() for r in rows],
        "mean_sd": stats,
    }
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
    out_of_scope: frozenset[str] | set[str] = frozenset(),
) -> EvalReport:
    from crmpilot.llm.factory import build_llm_client
    from crmpilot.llm.local import LocalProvider
    from crmpilot.llm.settings import LLMSettings

    local = LocalProvider(head=head, batcher=EmbeddingBatcher(encoder()))
    settings = LLMSettings(provider="local", cache="off", max_concurrency=concurrency)
    client = build_llm_client(settings, local_provider_factory=lambda: local)
    try:
        return await evaluate(
            client,
            classify_ticket_spec(categories),
            dataset,
            name=name,
            head=head.id if head else "zero-shot",
            concurrency=concurrency,
            out_of_scope=out_of_scope,
        )
    finally:
        await client.aclose()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_out
    )


def main(argv: Sequence[str] | None = None, *, encoder_factory: Callable[[], Encoder] = Encoder) -> int:
    """Run the benchmark; ``encoder_factory`` lets tests use a stand-in model."""
    parser = argparse.ArgumentParser(
        prog="python -m crmpilot.evaluation.banking77", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CRMPILOT_BANKING77_DIR", DEFAULT_DIR)))
    parser.add_argument("--train", type=int, default=2000, help="training items (0: all the rest)")
    parser.add_argument(
        "--test", type=float, default=1000, help="held-out items (a number, or a share of the rows when below 1)"
    )
    parser.add_argument("--few-shot", type=int, default=10, help="examples per label of the few-shot head (0: skip)")
    parser.add_argument("--e2e", type=int, default=300, help="test items run end to end through the provider (0: skip)")
    parser.add_argument("--concurrency", type=int, default=32, help="end-to-end items in flight")
    parser.add_argument(
        "--c", type=float, default=TrainOptions().c, help="inverse regularisation of the logistic regression"
    )
    parser.add_argument(
        "--hybrid-c", type=float, default=HYBRID.c, help="the same for the hybrid head's two regressions"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where splits, head and reports go (default: a temp folder)"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="instead: K-fold cross-validation of the hybrid head over every row (0: off)",
    )
    parser.add_argument(
        "--holdout-intents",
        type=int,
        default=0,
        help="instead: hold K whole intents out of training and measure the out-of-scope gate (0: off)",
    )
    parser.add_argument(
        "--gate-pass-rate",
        type=float,
        default=TrainOptions().gate_pass_rate,
        help="share of in-scope dev tickets the gate lets through",
    )
    parser.add_argument(
        "--features",
        choices=("hybrid", "embedding"),
        default="hybrid",
        help="--folds / --holdout-intents: the head trained",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep the whole file's embeddings here (--folds, --holdout-intents)",
    )
    parser.add_argument(
        "--split-seed", type=int, default=None, help="--holdout-intents: seed of the test part (default: --seed)"
    )
    args = parser.parse_args(argv)
    if args.folds == 1 or args.folds < 0:
        parser.error("--folds needs at least 2 folds (0: off)")
    if args.folds and args.holdout_intents:
        parser.error("--folds and --holdout-intents are two different runs")
    if args.test <= 0 or (args.test >= 1 and args.test != int(args.test)):
        parser.error("--test is a number of items, or a share below 1")
    test_size: float | int = int(args.test) if args.test >= 1 else float(args.test)

    data_dir: Path = args.data_dir
    if not (data_dir / "train.csv").is_file() or not (data_dir / "categories.json").is_file():
        print(f"dataset not found at {data_dir.resolve()} (expected train.csv and categories.json); nothing measured")
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crmpilot-banking77-"))
    work.mkdir(parents=True, exist_ok=True)
    categories = load_categories(data_dir / "categories.json")
    full = read_labelled(data_dir / "train.csv")
    base = HYBRID if args.features == "hybrid" else TrainOptions(c=args.c)
    chosen = replace(
        base,
        c=args.hybrid_c if args.features == "hybrid" else args.c,
        seed=args.seed,
        gate_pass_rate=args.gate_pass_rate,
    )
    if args.folds:
        return _cross_validate(
            full, categories, encoder_factory(), folds=args.folds, options=chosen, work=work, cache_dir=args.cache_dir
        )
    if args.holdout_intents:
        return _holdout(
            full,
            categories,
            encoder_factory,
            intents=args.holdout_intents,
            test=test_size,
            options=chosen,
            e2e=args.e2e,
            concurrency=args.concurrency,
            work=work,
            cache_dir=args.cache_dir,
            split_seed=args.seed if args.split_seed is None else args.split_seed,
        )
    train, test = _split(full, train=args.train or None, test=test_size, seed=args.seed)
    _write_split(train, work / "train.csv")
    _write_split(test, work / "test.csv")
    _out.print(
        f"Banking77 from {data_dir}: {len(full)} rows, {len(categories)} labels; train {len(train)}, test "
        f"{len(test)} (seed {args.seed}); workdir {work}"
    )

    encoder = encoder_factory()
    encoder.encode(["warm up"], is_query=True)  # load the model outside the timings
    with _progress() as progress:
        bar = progress.add_task("embedding train", total=len(train))
        x_train = embed_texts(
            [t.text for t in train.items], encoder, progress=lambda d, n: progress.update(bar, completed=d)
        )
        bar = progress.add_task("embedding test", total=len(test))
        started = time.perf_counter()
        x_test = embed_texts(
            [t.text for t in test.items], encoder, progress=lambda d, n: progress.update(bar, completed=d)
        )
        encode_rate = len(test) / (time.perf_counter() - started)
    gold = [t.label for t in test.items]
    y_train = [t.label for t in train.items]
    t_train, t_test = [t.text for t in train.items], [t.text for t in test.items]

    options = TrainOptions(c=args.c, seed=args.seed, gate_pass_rate=args.gate_pass_rate)
    hybrid_options = replace(HYBRID, c=args.hybrid_c, seed=args.seed, gate_pass_rate=args.gate_pass_rate)
    provenance = {
        "source": str(work / "train.csv"),
        "data_sha256": read_labelled(work / "train.csv").sha256,
        "skipped_rows": 0,
    }
    fit = partial(
        fit_head,
        x_train,
        y_train,
        encoder=encoder.model_version,
        categories=categories,
        provenance=provenance,
        texts=t_train,
    )
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
        _figures(
            f"hybrid, T=1 (uncalibrated), fit part only, {len(train)} ex.",
            hybrid_dev_fit.with_temperature(1.0),
            x_test,
            t_test,
            gold,
        ),
        _figures(
            f"hybrid, T={hybrid_dev_fit.temperature:.3f} (calibrated), fit part only, {len(train)} ex.",
            hybrid_dev_fit,
            x_test,
            t_test,
            gold,
        ),
        _figures(
            f"hybrid, T={hybrid.temperature:.3f} (calibrated), refitted on all {len(train)} ex.",
            hybrid,
            x_test,
            t_test,
            gold,
        ),
    ]
    if args.few_shot:
        ids = _few_shot(train, args.few_shot, args.seed)
        few = fit_head(
            x_train[ids],
            [y_train[i] for i in ids],
            encoder=encoder.model_version,
            options=options,
            categories=categories,
        )
        rows.append(_figures(f"few-shot {args.few_shot}/label, T={few.temperature:.3f}", few, x_test, t_test, gold))

    reports: dict[str, EvalReport] = {}
    if args.e2e:
        subset = test.first(args.e2e)
        (work / "reports").mkdir(exist_ok=True)
        for name, head in (("zero-shot", None), ("trained", trained), ("hybrid", hybrid)):
            _out.print(f"end to end: {name}, {len(subset)} items at concurrency {args.concurrency}")
            run = _end_to_end(
                head,
                categories,
                subset,
                name=f"banking77-{name}",
                concurrency=args.concurrency,
                encoder=encoder_factory,
            )
            report = asyncio.run(run)
            report.save(work / "reports" / f"banking77-{name}.json")
            write_html(report, work / "reports" / f"banking77-{name}.html")
            reports[name] = report
        single = test.first(min(100, args.e2e))
        _out.print(f"end to end: trained, {len(single)} single calls (concurrency 1)")
        single_run = _end_to_end(
            trained, categories, single, name="banking77-trained-single", concurrency=1, encoder=encoder_factory
        )
        reports["trained-single"] = asyncio.run(single_run)
        _out.print(f"end to end: hybrid, {len(single)} single calls (concurrency 1)")
        single_run = _end_to_end(
            hybrid, categories, single, name="banking77-hybrid-single", concurrency=1, encoder=encoder_factory
        )
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
        f"crmpilot train --data {work}/train.csv --categories {cats} --features embedding --c {args.c:g} "
        f"--seed {args.seed} --out {work}/heads",
        (
            f"crmpilot train --data {work}/train.csv --categories {cats} --features hybrid --c {args.hybrid_c:g} "
            f"--seed {args.seed} --out {work}/heads"
        ),
        f"crmpilot eval run --data {work}/test.csv --categories {cats} --provider local --head {head_dir} "
        f"--out {work}/reports --name trained",
        f"crmpilot eval run --data {work}/test.csv --categories {cats} --provider local --head {hybrid_dir} "
        f"--out {work}/reports --name hybrid",
        f"CRMPILOT_LLM_LOCAL_HEAD= crmpilot eval run --data {work}/test.csv --categories {cats} --provider "
        f"local --out {work}/reports --name zero-shot",
        f"crmpilot eval compare {work}/reports/zero-shot.json {work}/reports/trained.json",
        f"crmpilot eval compare {work}/reports/trained.json {work}/reports/hybrid.json",
    ):
        _out.print(f"  {line}", soft_wrap=True, markup=False)
    _out.print(f"summary: {work}/summary.json", soft_wrap=True)
    return 0


_FIGURES = (
    "accuracy",
    "macro_f1",
    "ece",
    "log_loss",
    "accuracy_at_08",
    "coverage_at_08",
    "gated_accuracy_at_08",
    "gated_coverage_at_08",
    "flagged",
)


def _figures_table(title: str, first: str, rows: list[HeadFigures]) -> Table:
    """One row per head (or fold): accuracy, macro-F1, ECE, log-loss, selective accuracy and coverage at 0.8 (and
    gated)."""
    table = Table(title=title)
    columns = (
        "accuracy",
        "macro-F1",
        "ECE",
        "log-loss",
        "acc. at conf ≥ 0.8",
        "coverage ≥ 0.8",
        "gated: acc. ≥ 0.8",
        "gated: coverage ≥ 0.8",
        "flagged",
    )
    for col in (first, *columns):
        table.add_column(col, justify="left" if col == first else "right")

    def opt(v: float | None, digits: int = 4) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    for r in rows:
        table.add_row(
            r.name,
            f"{r.accuracy:.4f}",
            f"{r.macro_f1:.4f}",
            f"{r.ece:.4f}",
            f"{r.log_loss:.3f}",
            opt(r.accuracy_at_08),
            f"{r.coverage_at_08:.3f}",
            opt(r.gated_accuracy_at_08),
            opt(r.gated_coverage_at_08, 3),
            opt(r.flagged, 3),
        )
    return table


@dataclass(frozen=True, slots=True)
class ScopeFigures:
    """One head on the held-out-intents test part: in-scope quality and what the held-out queries reach."""

    name: str
    head_id: str
    bound: float | None
    accuracy: float
    auto_coverage: float
    """In-scope queries with (gated) confidence ≥ 0.8: auto-applied."""
    auto_accuracy: float | None
    suggest_coverage: float
    suggest_accuracy: float | None
    in_scope_flagged: float
    oos_auto: float
    """Held-out-intent queries with (gated) confidence ≥ 0.8: a wrong category written as fact."""
    oos_suggest: float
    """… ≥ 0.5: written at least as a suggestion."""
    oos_flagged: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _scope_figures(
    name: str,
    head: TicketClassifierHead,
    x_in: Vectors,
    t_in: Sequence[str],
    gold: Sequence[str],
    x_out: Vectors,
    t_out: Sequence[str],
) -> ScopeFigures:
    def read(x: Vectors, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs = head_proba(head, x, texts)
        top = probs.argmax(axis=1)
        scope = scope_of(head, x)
        outside = scope.outside if scope is not None else np.zeros(len(top), dtype=bool)
        return top, np.where(outside, 0.0, probs[np.arange(len(top)), top]), outside

    top, conf, flagged = read(x_in, t_in)
    correct = np.array([head.labels[int(i)] == g for i, g in zip(top, gold, strict=True)])
    auto, suggest = selective(conf, correct, (0.8, 0.5))
    _, conf_out, flagged_out = read(x_out, t_out)
    probe = scope_of(head, x_in[:1])
    return ScopeFigures(
        name, head.id, probe.bound if probe is not None else None, float(correct.mean()), auto.coverage, auto.accuracy,
        suggest.coverage, suggest.accuracy, float(flagged.mean()),
        float(np.mean(conf_out >= 0.8)), float(np.mean(conf_out >= 0.5)), float(flagged_out.mean()),
    )  # fmt: skip


def _scope_table(title: str, rows: list[ScopeFigures]) -> Table:
    table = Table(title=title)
    columns = (
        "bound",
        "in-scope acc.",
        "auto cov. ≥ 0.8",
        "auto acc.",
        "suggest cov. ≥ 0.5",
        "suggest acc.",
        "in-scope flagged",
        "held-out auto ≥ 0.8",
        "held-out ≥ 0.5",
        "held-out flagged",
    )
    table.add_column("head")
    for col in columns:
        table.add_column(col, justify="right")

    def opt(v: float | None) -> str:
        return "—" if v is None else f"{v:.4f}"

    for r in rows:
        table.add_row(
            r.name,
            opt(r.bound),
            f"{r.accuracy:.4f}",
            f"{r.auto_coverage:.3f}",
            opt(r.auto_accuracy),
            f"{r.suggest_coverage:.3f}",
            opt(r.suggest_accuracy),
            f"{r.in_scope_flagged:.3f}",
            f"{r.oos_auto:.3f}",
            f"{r.oos_suggest:.3f}",
            f"{r.oos_flagged:.3f}",
        )
    return table


def _holdout(
    full: Dataset,
    categories: tuple[Category, ...],
    encoder_factory: Callable[[], Encoder],
    *,
    intents: int,
    test: float,
    options: TrainOptions,
    e2e: int,
    concurrency: int,
    work: Path,
    cache_dir: Path | None,
    split_seed: int | None = None,
) -> int:
    """Whole intents held out of training: how many of their test queries a head would auto-apply or suggest."""
    from sklearn.model_selection import train_test_split

    seed = options.seed
    texts, labels = [t.text for t in full.items], [t.label for t in full.items]
    names = sorted(set(labels))
    if not 0 < intents <= len(names) - 2:
        raise SystemExit(f"--holdout-intents must be between 1 and {len(names) - 2} (the data has {len(names)} labels)")
    held = sorted(np.random.default_rng(seed).choice(names, size=intents, replace=False).tolist())
    held_set = set(held)
    split_seed = seed if split_seed is None else split_seed
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test, random_state=split_seed, stratify=labels
    )
    fit_idx = np.array([i for i in train_idx if labels[i] not in held_set])
    in_idx = np.array([i for i in test_idx if labels[i] not in held_set])
    out_idx = np.array([i for i in test_idx if labels[i] in held_set])
    in_scope = tuple(c for c in categories if c.name not in held_set)
    _out.print(
        f"Banking77: {len(texts)} rows, {len(names)} labels; seed {seed}: test part {len(test_idx)} rows "
        f"(split seed {split_seed}), "
        f"{intents} intents held out of "
        f"training: {', '.join(held)}; training on {len(fit_idx)} rows of {len(in_scope)} intents; test: "
        f"{len(in_idx)} in-scope, "
        f"{len(out_idx)} held-out-intent queries; workdir {work}",
        soft_wrap=True,
    )
    encoder = encoder_factory()
    vectors = _embed_all(texts, encoder, cache_dir, full.sha256)
    pick = partial(_pick, full)
    _write_split(pick(fit_idx, "train"), work / "train.csv")
    _write_split(pick(test_idx, "test", unknown=held_set), work / "test.csv")
    (work / "categories.json").write_text(
        json.dumps([{"name": c.name, "description": c.description, "queue": c.queue} for c in in_scope], indent=1)
        + "\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    head = fit_head(
        vectors[fit_idx],
        [labels[i] for i in fit_idx],
        encoder=encoder.model_version,
        options=options,
        categories=in_scope,
        texts=[texts[i] for i in fit_idx],
        provenance={
            "source": str(work / "train.csv"),
            "data_sha256": read_labelled(work / "train.csv").sha256,
            "skipped_rows": 0,
        },
    )
    fit_s = time.perf_counter() - started
    folder = head.save(work / "heads")
    gold = [labels[i] for i in in_idx]
    x_in, t_in = vectors[in_idx], [texts[i] for i in in_idx]
    x_out, t_out = vectors[out_idx], [texts[i] for i in out_idx]
    figures = partial(_scope_figures, x_in=x_in, t_in=t_in, gold=gold, x_out=x_out, t_out=t_out)
    rows = [figures(f"{options.features}, no gate", head.with_gate(None))]
    if head.gate is not None:
        bounds = head.gate.meta.get("dev", {}).get("bound_by_pass_rate", {})
        for rate, bound in sorted(bounds.items(), key=lambda kv: float(kv[0])):
            if abs(float(bound) - head.gate.bound) < 1e-12:
                continue
            gate = ScopeGate(head.gate.examples, float(bound), head.gate.meta)
            rows.append(figures(f"{options.features}, gate at dev pass rate {rate}", head.with_gate(gate)))
        rows.append(
            figures(f"{options.features}, gate at dev pass rate {options.gate_pass_rate:g} (the artefact)", head)
        )
    zero_shot = asyncio.run(ZeroShotHead.build(in_scope, EmbeddingBatcher(encoder), min_similarity=None))
    rows.append(figures("zero-shot (in-scope names), no bound", zero_shot))
    rows.append(
        figures(
            f"zero-shot, bound {DEFAULT_MIN_SIMILARITY:g}", replace(zero_shot, min_similarity=DEFAULT_MIN_SIMILARITY)
        )
    )
    _out.print(
        _scope_table(
            f"Banking77, {intents} intents held out (seed {seed}): {len(in_idx)} in-scope and {len(out_idx)} "
            "held-out test queries",
            rows,
        )
    )
    _out.print(
        f"head {head.id} ({folder}): trained in {fit_s:.0f} s"
        + (f", gate bound {head.gate.bound:.4f} over {head.gate.size} examples" if head.gate else ""),
        soft_wrap=True,
    )

    report: EvalReport | None = None
    if e2e:
        subset = read_labelled(work / "test.csv").first(e2e)
        _out.print(
            f"end to end: the gated head on the first {len(subset)} test queries (held-out ones labelled "
            f"{OOS_LABEL}), concurrency {concurrency}"
        )
        report = asyncio.run(
            _end_to_end(
                head,
                in_scope,
                subset,
                name="banking77-holdout",
                concurrency=concurrency,
                encoder=encoder_factory,
                out_of_scope={OOS_LABEL},
            )
        )
        (work / "reports").mkdir(exist_ok=True)
        report.save(work / "reports" / "banking77-holdout.json")
        write_html(report, work / "reports" / "banking77-holdout.html")
        oos = report.out_of_scope
        if oos is not None:
            _out.print(
                f"  eval report: in-scope accuracy {report.quality.accuracy:.4f}; held-out: {oos.n} items, "
                f"auto-applied {oos.auto_applied:.3f}, "
                f"at suggest {oos.at_suggest:.3f}, flagged {oos.flagged:.3f}; in-scope flagged "
                f"{oos.in_scope_flagged:.3f}; {report.throughput_per_s:.1f} items/s",
                soft_wrap=True,
            )
    summary = {
        "seed": seed,
        "split_seed": split_seed,
        "held_out_intents": held,
        "test": len(test_idx),
        "test_in_scope": len(in_idx),
        "test_held_out": len(out_idx),
        "train": len(fit_idx),
        "encoder": encoder.model_version,
        "head": head.id,
        "fit_s": fit_s,
        "options": {
            "features": options.features,
            "c": options.c,
            "refit": options.refit,
            "gate_pass_rate": options.gate_pass_rate,
        },
        "gate": None if head.gate is None else {"bound": head.gate.bound, "examples": head.gate.size, **head.gate.meta},
        "rows": [r.as_dict() for r in rows],
        "end_to_end": None if report is None else report.out_of_scope.model_dump() if report.out_of_scope else None,
    }
    (work / "holdout.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _out.print("\nReproduce from the CLI (same split):", soft_wrap=True)
    for line in (
        f"crmpilot train --data {work}/train.csv --categories {work}/categories.json --seed {seed} "
        f"--gate-pass-rate {options.gate_pass_rate:g} --out {work}/cli-heads",
        f"crmpilot eval run --data {work}/test.csv --provider local --head {work}/cli-heads/<head id> --out "
        f"{work}/reports --name holdout",
    ):
        _out.print(f"  {line}", soft_wrap=True, markup=False)
    _out.print(f"summary: {work}/holdout.json", soft_wrap=True)
    return 0


def _pick(dataset: Dataset, ids: Iterable[int], part: str, unknown: set[str] | frozenset[str] = frozenset()) -> Dataset:
    """Rows ``ids`` of ``dataset`` (labels in ``unknown`` relabelled :data:`OOS_LABEL`)."""
    items = tuple(replace(t, label=OOS_LABEL) if t.label in unknown else t for t in (dataset.items[i] for i in ids))
    return Dataset(items, f"{dataset.source}#{part}")


def _print(
    rows: list[HeadFigures],
    reports: dict[str, EvalReport],
    encode_rate: float,
    heads: dict[str, tuple[TrainedHead, Path]],
) -> None:
    _out.print(_figures_table(f"Banking77 held-out test, {len(rows)} heads on the same embeddings", "head", rows))
    for name, (head, folder) in heads.items():
        dev = head.meta["metrics"]["dev"]
        _out.print(
            f"{name} head {head.id} ({folder}): dev n={dev['n']}, accuracy {dev['accuracy']:.4f}, "
            f"T={head.temperature:.4f}, "
            f"dev ECE {dev['ece_before']:.4f} → {dev['ece_after']:.4f}, dev log-loss "
            f"{dev['log_loss_before']:.3f} → {dev['log_loss_after']:.3f}",
            soft_wrap=True,
        )
    _out.print(f"encoder throughput (batches of 64, one process): {encode_rate:.1f} texts/s", soft_wrap=True)
    if reports:
        e2e = Table(title="end to end through the LLM client and the local provider")
        for col in ("run", "items", "concurrency", "accuracy", "latency p50 ms", "latency p95 ms", "items/s"):
            e2e.add_column(col, justify="left" if col == "run" else "right")
        for name, r in reports.items():
            e2e.add_row(
                name,
                str(r.quality.n),
                str(r.run.concurrency),
                f"{r.quality.accuracy:.4f}",
                f"{r.latency_ms.p50:.1f}",
                f"{r.latency_ms.p95:.1f}",
                f"{r.throughput_per_s:.1f}",
            )
        _out.print(e2e)


if __name__ == "__main__":
    sys.exit(main())
