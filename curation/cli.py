"""`findap`: query the DuckDB catalog of every stage's outputs and print audits as tables.

The catalog holds views only, so it is cheap to rebuild and always reads the Parquet DVC tracks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from curation.config import PARAMS_FILE, load_params
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


def stage_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Views over stage records (not drops), in creation order."""
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_oid").fetchall()
    return [name for (name,) in rows if not name.endswith("_drops")]


@app.command()
def sql(query: str, params: ParamsOption = Path(PARAMS_FILE), limit: int = 50) -> None:
    """Run a SQL query against the catalog and print the first rows."""
    with duckdb.connect(str(_catalog(params)), read_only=True) as con:
        console.print(_table(con, query, limit=limit))


@app.command()
def audit(params: ParamsOption = Path(PARAMS_FILE)) -> None:
    """Per stage: records by kind and capability, and drops by reason."""
    with duckdb.connect(str(_catalog(params)), read_only=True) as con:
        views = stage_views(con)
        all_views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        for view in views:
            query = (
                f"SELECT capability, kind, count(*) AS records, count(DISTINCT source) AS sources FROM {view} "
                "GROUP BY ALL ORDER BY capability, kind"
            )
            console.print(_table(con, query, title=f"{view}: kept records"))
            if f"{view}_drops" in all_views:
                query = f"SELECT reason, source, count(*) AS dropped FROM {view}_drops GROUP BY ALL ORDER BY ALL"
                console.print(_table(con, query, title=f"{view}: dropped by reason"))


@app.command()
def catalog(params: ParamsOption = Path(PARAMS_FILE)) -> None:
    """Rebuild the catalog's views from the stage folders beside it (after `dvc checkout` or a lock)."""
    path = Path(load_params("io", IOParams, params).catalog)
    stages = rebuild_catalog(path, path.parent)
    console.print(f"{path}: views for {', '.join(stages) or 'no stage yet'}")


if __name__ == "__main__":
    app()
