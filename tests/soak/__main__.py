"""``python -m tests.soak`` (``make soak``): see soak_runner.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # soak_runner, and through it the chaos_* modules

from soak_runner import main

sys.exit(main(sys.argv[1:]))
