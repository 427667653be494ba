"""dvc.yaml is the only place paths are written; these tests keep it honest against the code and params.yaml."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import PARAMS, REPO


DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]
PACKAGES = ("curation", "training", "evaluation")


def module_file(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def project_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """The project modules `module` imports, transitively (what its stage must list as deps)."""
    seen = seen if seen is not None else set()
    if module in seen:
        return seen
    seen.add(module)
    for node in ast.walk(ast.parse(module_file(module).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and module_file(name).exists():
                project_imports(name, seen)
    return seen


def declared(stage: dict, key: str) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in stage.get(key, [])}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_paths_and_modules_are_declared(name: str) -> None:
    stage = STAGES[name]
    cmd, deps = stage["cmd"], declared(stage, "deps")
    module = re.search(r"python -m ([\w.]+)", cmd).group(1)
    for path in re.findall(r"--(?:input|output|metrics|params) (\S+)", cmd):
        assert path in deps | declared(stage, "outs") | declared(stage, "metrics"), f"{name}: {path} not declared"
    needed = {str(module_file(m).relative_to(REPO)) for m in project_imports(module)}
    assert needed <= deps, f"{name}: add {sorted(needed - deps)} to its deps"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_params_sections_exist(name: str) -> None:
    sections = yaml.safe_load(PARAMS.read_text())
    for section in STAGES[name].get("params", []):
        assert section in sections, f"{name}: params section {section!r} is not in params.yaml"


def test_outputs_live_under_data() -> None:
    for name, stage in STAGES.items():
        for out in declared(stage, "outs") | declared(stage, "metrics"):
            assert out.startswith("data/"), f"{name}: {out} must be under data/"
