"""``python -m tests.bench`` (what ``make bench`` runs): see :mod:`tests.bench.runner`."""

from tests.bench.runner import main

raise SystemExit(main())
