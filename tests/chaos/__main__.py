"""``python -m tests.chaos`` (``make chaos``): see chaos_runner.py.

``--snapshot``: run the committed code (``HEAD``) instead of the working tree:
``libs``, ``services``, ``infra``, ``tests/chaos`` and ``tests/netkit.py`` of HEAD are extracted
(``git archive``) into the chaos run folder, and the runner re-executes itself
from there with ``PYTHONPATH`` pointing at them (before the venv's editable
installs), so the runner, the migrations and every service process run the
same, committed code while others keep editing the working tree.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _snapshot(argv: list[str]) -> None:
    repo = HERE.parents[1]
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    run_dir = Path(os.environ.get("CRMPILOT_CHAOS_RUN_DIR", "/tmp/chaos-run"))
    dest = run_dir / f"src-{sha}"
    # (a folder extracted before tests/netkit.py was part of it is extracted again)
    if not (dest / ".complete").exists() or not (dest / "tests" / "netkit.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            [
                "git",
                "archive",
                "HEAD",
                "libs",
                "services",
                "infra",
                "tests/chaos",
                "tests/netkit.py",
            ],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        (dest / ".complete").write_text(sha)
    env = {
        **os.environ,
        "CRMPILOT_CHAOS_SNAPSHOT": sha,
        "PYTHONPATH": os.pathsep.join(
            [
                str(dest / "libs" / "crmpilot" / "src"),
                str(dest / "services"),
                str(dest / "tests" / "chaos"),
                str(dest),  # tests.netkit
            ]
        ),
    }
    print(f"[chaos] running the committed code of {sha} from {dest}", flush=True)
    os.execve(
        sys.executable,
        [sys.executable, str(dest / "tests" / "chaos" / "__main__.py"), *argv],
        env,
    )


argv = sys.argv[1:]
if "--snapshot" in argv and not os.environ.get("CRMPILOT_CHAOS_SNAPSHOT"):
    _snapshot([a for a in argv if a != "--snapshot"])

sys.path.insert(0, str(HERE))  # the chaos_* modules import each other by name

from chaos_runner import main  # noqa: E402 - importable only after the sys.path insert above

sys.exit(main([a for a in argv if a != "--snapshot"]))
