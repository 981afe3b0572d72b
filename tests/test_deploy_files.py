"""deploy/: the Debian layout's files name only real settings and modules, and the commands
docs/deploy.md gives fill every placeholder of the nginx and coturn templates."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

from core.settings import table as settings_table

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
PLACEHOLDER = re.compile(r"@@[A-Z0-9_]+@@")


def _settings() -> set[str]:
    return {f.metadata["env"] for f, _ in settings_table()}


@pytest.mark.parametrize("example", sorted(DEPLOY.glob("*.env.example")), ids=lambda p: p.name)
def test_every_name_in_an_env_example_is_a_setting(example: Path) -> None:
    names = [line.split("=", 1)[0] for line in example.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert names, f"{example.name} sets nothing"
    unknown = sorted(set(names) - _settings())
    assert not unknown, f"{example.name} sets names no process reads: {unknown}"


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")),
                         ids=lambda p: p.name)
def test_every_systemd_unit_runs_a_module_of_the_project(unit: Path) -> None:
    text = unit.read_text(encoding="utf-8")
    modules = re.findall(r"^ExecStart=\S+ -m (\S+)", text, flags=re.MULTILINE)
    assert modules, f"{unit.name} has no ExecStart running a module"
    for module in modules:
        spec = importlib.util.find_spec(module + ".__main__") or importlib.util.find_spec(module)
        assert spec is not None, f"{unit.name} runs {module}, which does not exist"


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("template", ["nginx/vwindow.conf", "coturn/turnserver.conf"])
def test_the_guides_command_fills_every_placeholder(template: str, tmp_path: Path) -> None:
    block = next((b for b in _shell_blocks() if f"deploy/{template}" in b), None)
    assert block is not None, f"docs/deploy.md has no command that fills deploy/{template}"
    command = next(c for c in block.replace("\\\n", " ").splitlines()
                   if c.lstrip().startswith("sed") and f"deploy/{template}" in c)
    # The guide's sed line as written, only writing into tmp_path instead of /etc.
    command = command.split(">", 1)[0]
    env = {"S": "window.example.lan", "L": "192.168.10.5", "T": "x" * 32, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=10, check=True).stdout
    left = {m for line in out.splitlines() if not line.lstrip().startswith("#")
            for m in PLACEHOLDER.findall(line)}
    assert not left, f"the guide's command leaves {sorted(left)} in deploy/{template}"
