"""The layer rules hold: import-linter's contracts in pyproject.toml are all kept."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_the_contracts_cover_the_rules_of_the_architecture() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}
    assert contracts["verify imports nothing of the project"]["forbidden_modules"] == [
        "core", "signaling", "media", "approval", "testkit"]
    assert {"signaling", "media", "approval"} <= set(
        contracts["core imports none of the processes"]["forbidden_modules"])
    assert contracts["signaling never imports media"]["forbidden_modules"] == ["media"]
    assert contracts["the product never imports the test kit"]["forbidden_modules"] == [
        "testkit"]
    cycles = contracts["no import cycle between the modules of a package"]
    assert cycles["type"] == "acyclic_siblings"
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= set(cycles["ancestors"]), "a package without the cycle check"
