"""``python -m tests.chaos`` (``make chaos``): see chaos_runner.py."""

import sys
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parent)
)  # the chaos_* modules import each other by name

from chaos_runner import main

sys.exit(main())
