"""The pytest side of a browser scenario (`tests.e2e.stack.scenario_main` or the visit's
own main): skip where it cannot run, run it in its own network namespace, fail with what
it reported, return what it saw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import ROOT
from tests.e2e.stack import CHROMIUM, FACES


def run_scenario(module: str, out: Path, timeout_s: float, *,
                 needs_faces: bool = False) -> dict[str, Any]:
    """`unshare -n -- python -m tests.e2e.<module> --out OUT`; its result, `out` added."""
    if needs_faces and not FACES.is_dir():
        pytest.skip(f"test faces not found at {FACES} (see ../shared/testdata/README.md)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (scripts/setup.sh installs it)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private network namespace")
    proc = subprocess.run(
        ["unshare", "-n", "--", sys.executable, "-m", f"tests.e2e.{module}", "--out",
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
    result_file = out / "result.json"
    if not result_file.exists():
        pytest.fail(f"{module} wrote no result (exit {proc.returncode}):\n"
                    f"{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["out"] = str(out)
    if not result.get("ok"):
        pytest.fail(f"browser scenario {module} failed: {result.get('error')}\n"
                    f"{result.get('trace', '')}\nwhat it saw: {result_file}\n"
                    f"screenshots in {out / 'screens'}")
    return result
