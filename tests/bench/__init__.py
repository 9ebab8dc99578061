"""``python -m tests.bench``: the consumer runtime against a naive loop and faust, measured side by side.

Not pytest tests (no ``test_`` modules or functions): ``make bench`` runs
:mod:`tests.bench.runner`, which starts the model endpoint
(:mod:`~tests.bench.bench_server`) and each contender
(:mod:`~tests.bench.bench_naive`, :mod:`~tests.bench.bench_faust`,
:mod:`~tests.bench.bench_runtime`) as processes of their own, on the same
workload (:mod:`~tests.bench.workload`), and prints one table.
"""
