"""`findap`: query the DuckDB catalog of every stage's outputs and print audits as tables.

The catalog holds views only, so it is cheap to rebuild and always reads the Parquet DVC tracks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import duckdb
import polars as pl
import typer
import yaml
from rich.table import Table

from curation.audit import AuditParams
from curation.audit import run as run_audit
from curation.config import PARAMS_FILE, apply_profile, load_params
from curation.io import IOParams, rebuild_catalog
from curation.progress import console


app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
ParamsOption = Annotated[Path, typer.Option("--params", help="params file naming the catalog")]


def _catalog(params_file: Path) -> Path:
    catalog = Path(load_params("io", IOParams, params_file).catalog)
    if not catalog.exists():
        raise typer.BadParameter(f"{catalog} does not exist yet; run `dvc repro` (or `findap catalog`) first")
    return catalog


def _table(con: duckdb.DuckDBPyConnection, query: str, title: str | None = None, limit: int = 50) -> Table:
    result = con.execute(query)
    table = Table(title=title, show_lines=False)
    for name, *_ in result.description:
        table.add_column(name, overflow="fold")
    for row in result.fetchmany(limit):
        table.add_row(*(f"{v:,}" if isinstance(v, int) else "" if v is None else str(v) for v in row))
    return table


@app.command()
def sql(query: str, params: ParamsOption = Path(PARAMS_FILE), limit: int = 50) -> None:
    """Run a SQL query against the catalog and print the first rows."""
    with duckdb.connect(str(_catalog(params)), read_only=True) as con:
        console.print(_table(con, query, limit=limit))


def audit_inputs(dvc_file: Path) -> list[Path]:
    """The stage folders the `audit` stage reads, from its command in dvc.yaml (where paths live)."""
    cmd = yaml.safe_load(dvc_file.read_text())["stages"]["audit"]["cmd"]
    return [Path(p) for p in re.findall(r"--input (\S+)", cmd)]


def frame_table(frame: pl.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for name in frame.columns:
        table.add_column(name, overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*(f"{v:,}" if isinstance(v, int) else "" if v is None else str(v) for v in row))
    return table


@app.command()
def audit(params: ParamsOption = Path(PARAMS_FILE), dvc_file: Path = Path("dvc.yaml")) -> None:
    """The audit stage's checks and tables, now: accounting, records per stage and capability, mixture shares."""
    folders = [f for f in audit_inputs(dvc_file) if f.exists()]
    if not folders:
        raise typer.BadParameter("no stage output yet; run `dvc repro` first")
    metrics, tables = run_audit(folders, load_params("audit", AuditParams, params))
    funnel = tables["funnel"].group_by("order", "stage", "capability", "outcome").agg(pl.col("records").sum())
    pivot = funnel.sort("order").pivot("stage", index=["capability", "outcome"], values="records", sort_columns=False)
    console.print(frame_table(pivot.sort("capability", "outcome"), "records per stage, capability and outcome"))
    if "mixture" in tables:
        console.print(frame_table(tables["mixture"], "mixture composition"))
    console.print(f"accounting: every record kept or dropped exactly once across {len(metrics['accounting'])} stages")


@app.command()
def profile(name: str, params: ParamsOption = Path(PARAMS_FILE)) -> None:
    """Merge profiles/<name>.yaml (or a profile file's path) into the params file; `git checkout` it to go back."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else Path("profiles") / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path("profiles").glob("*.yaml"))) or "none"
        raise typer.BadParameter(f"{path} does not exist (profiles: {known})")
    keys = apply_profile(params, path)
    console.print(f"{params}: {len(keys)} keys from {path}: {', '.join(keys)}; run `dvc repro` (or `dvc exp run`)")


@app.command()
def catalog(params: ParamsOption = Path(PARAMS_FILE)) -> None:
    """Rebuild the catalog's views from the stage folders beside it (after `dvc checkout` or a lock)."""
    path = Path(load_params("io", IOParams, params).catalog)
    stages = rebuild_catalog(path, path.parent)
    console.print(f"{path}: views for {', '.join(stages) or 'no stage yet'}")


if __name__ == "__main__":
    app()
