"""`make typecheck`: mypy over libs, services and tests, as configured in pyproject.toml [tool.mypy].

The test folders on ``mypy_path`` (their helpers are imported by bare name) give their files bare module names, so
their conftest.py and __main__.py files would all be ``conftest`` / ``__main__``: the whole-tree run leaves them out
(``exclude``) and each is checked here in a run of its own. Exit 1 if any run finds an error.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MYPY = [sys.executable, "-m", "mypy"]


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    excluded = [re.compile(p) for p in config.get("exclude", [])]
    rc = subprocess.call([*MYPY, "libs/crmpilot/src", "services", "tests"], cwd=ROOT)
    alone = sorted(
        path
        for path in (p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py"))
        if any(x.search(path) for x in excluded)
    )
    for path in alone:
        if subprocess.call([*MYPY, "--no-error-summary", path], cwd=ROOT) != 0:
            print(f"typecheck: {path} has errors (checked on its own)")
            rc = 1
    print(f"typecheck: the tree and {len(alone)} conftest/__main__ file(s) on their own: {'FAILED' if rc else 'clean'}")
    return 1 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
