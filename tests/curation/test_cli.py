from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curation.cli import app
from tests.curation.stage_helpers import make_record, project, run_main, write_input


@pytest.fixture()
def catalog_project(tmp_path: Path) -> Path:
    from curation import clean

    records = [make_record(f"Revenue grew {i} percent.") for i in range(3)] + [make_record("Click here to win")]
    params = project(tmp_path)
    run_main(clean.main, tmp_path, params, [write_input(tmp_path / "in", records)], "clean")
    return params


def test_sql_prints_query_results(catalog_project: Path) -> None:
    result = CliRunner().invoke(
        app, ["sql", "SELECT kind, count(*) AS n FROM clean GROUP BY 1", "--params", str(catalog_project)]
    )
    assert result.exit_code == 0, result.output
    assert "cpt" in result.output and "│ 3 " in result.output


def test_audit_runs_the_audit_stage_checks_on_the_dvc_inputs(catalog_project: Path, tmp_path: Path) -> None:
    dvc_file = tmp_path / "dvc.yaml"
    cmd = f"python -m curation.audit --input {tmp_path / 'in'} --input {tmp_path / 'clean'} --output x --metrics y"
    dvc_file.write_text(yaml.safe_dump({"stages": {"audit": {"cmd": cmd}}}))
    result = CliRunner().invoke(app, ["audit", "--params", str(catalog_project), "--dvc-file", str(dvc_file)])
    assert result.exit_code == 0, result.output
    assert "clean.empty_after_cleaning" in result.output and "exactly once across 1 stages" in result.output


def test_catalog_rebuild_and_missing_catalog(catalog_project: Path, tmp_path: Path) -> None:
    (tmp_path / "catalog.duckdb").unlink()
    result = CliRunner().invoke(app, ["sql", "SELECT 1", "--params", str(catalog_project)])
    assert result.exit_code != 0 and "does not exist yet" in result.output
    result = CliRunner().invoke(app, ["catalog", "--params", str(catalog_project)])
    assert result.exit_code == 0 and "views for clean" in result.output
