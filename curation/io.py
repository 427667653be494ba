"""Stage I/O: command-line paths, sharded Parquet records, drops, metrics JSON and the DuckDB catalog.

A stage writes its kept records as a few large Parquet shards (`records-00000.parquet`, ...) sorted by id, its
dropped rows as `drops.parquet` with a reason each, and a metrics JSON. Every file is written to a temporary name
and renamed, so an interrupted stage never leaves a half-written file that looks finished. After writing, the stage
registers DuckDB views over its outputs in the catalog, so `duckdb data/catalog.duckdb` sees every stage's data.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curation.config import PARAMS_FILE, params
from curation.progress import summary
from curation.schema import DROP_SCHEMA, ID, RECORD_SCHEMA


log = logging.getLogger(__name__)
RECORDS_GLOB = "records-*.parquet"
DROPS_FILE = "drops.parquet"


@params
class IOParams:
    rows_per_shard: int
    catalog: str
    compression: str


@dataclass(frozen=True)
class StagePaths:
    inputs: list[Path]
    output: Path
    metrics: Path
    params: Path
    plots: Path | None


def stage_paths(argv: Sequence[str] | None, description: str) -> StagePaths:
    """The paths a stage gets from its `cmd` in dvc.yaml: the only place paths are written."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", action="append", type=Path, default=[], help="input folder or file (repeatable)")
    parser.add_argument("--output", type=Path, required=True, help="folder for this stage's records and drops")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON for `dvc metrics show`")
    parser.add_argument("--params", type=Path, default=Path(PARAMS_FILE), help="params file (default: %(default)s)")
    parser.add_argument("--plots", type=Path, help="folder for plot data declared under `plots:` in dvc.yaml")
    args = parser.parse_args(argv)
    return StagePaths(args.input, args.output, args.metrics, args.params, args.plots)


def write_table(table: pa.Table, path: Path, compression: str) -> None:
    """Write one Parquet file under a temporary name and rename it: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression=compression)
    os.replace(tmp, path)


def write_records(table: pa.Table, folder: Path, io: IOParams) -> list[Path]:
    """Write records sorted by id as shards of at most `rows_per_shard` rows; returns the shard paths."""
    table = table.select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA).sort_by(ID)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(RECORDS_GLOB):
        old.unlink()
    n_shards = max(1, -(-table.num_rows // io.rows_per_shard))
    paths = []
    for i in range(n_shards):
        path = folder / f"records-{i:05d}.parquet"
        write_table(table.slice(i * io.rows_per_shard, io.rows_per_shard), path, io.compression)
        paths.append(path)
    return paths


def read_records(folders: Iterable[Path], columns: Sequence[str] | None = None) -> pa.Table:
    """All records under the given stage folders, as one Arrow table with the record schema."""
    files = sorted(f for folder in folders for f in Path(folder).glob(RECORDS_GLOB))
    if not files:
        raise FileNotFoundError(f"no {RECORDS_GLOB} under {', '.join(map(str, folders))}; run the stage before it")
    schema = RECORD_SCHEMA if columns is None else pa.schema([RECORD_SCHEMA.field(c) for c in columns])
    return pa.concat_tables(pq.read_table(f, columns=schema.names, schema=schema) for f in files)


def write_drops(rows: Sequence[Mapping[str, Any]] | pa.Table, folder: Path, io: IOParams) -> Path:
    """Write dropped rows (DROP_SCHEMA); an empty list still writes a file, so the view always exists."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=DROP_SCHEMA)
    table = table.select(DROP_SCHEMA.names).cast(DROP_SCHEMA)
    table = table.sort_by([("source", "ascending"), ("file", "ascending"), ("line", "ascending"), (ID, "ascending")])
    path = folder / DROPS_FILE
    write_table(table, path, io.compression)
    return path


def write_metrics(metrics: Mapping[str, Any], path: Path) -> None:
    """The stage's metrics JSON (sorted keys), read by `dvc metrics show` and the audit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_stage(
    stage: str,
    records: pa.Table,
    drops: Sequence[Mapping[str, Any]] | pa.Table,
    metrics: Mapping[str, Any],
    paths: StagePaths,
    io: IOParams,
    started: float,
) -> None:
    """Everything a record stage leaves behind: shards, drops, metrics, catalog views and the summary line."""
    write_records(records, paths.output, io)
    write_drops(drops, paths.output, io)
    write_metrics(metrics, paths.metrics)
    register_views(Path(io.catalog), stage, paths.output)
    summary(stage, metrics["in"], metrics["kept"], metrics["dropped"], time.perf_counter() - started)


def register_views(catalog: Path, stage: str, folder: Path, extra: Mapping[str, str] | None = None) -> None:
    """Create or replace the views `<stage>` (records), `<stage>_drops`, and `extra` {view: glob in folder}."""
    statements = [
        f"CREATE OR REPLACE VIEW \"{view}\" AS SELECT * FROM read_parquet('{folder / glob}')"
        for view, glob in (extra or {}).items()
    ]
    if any(folder.glob(RECORDS_GLOB)):
        records = folder / RECORDS_GLOB
        statements.append(f"CREATE OR REPLACE VIEW \"{stage}\" AS SELECT * FROM read_parquet('{records}')")
    if (folder / DROPS_FILE).exists():
        drops = folder / DROPS_FILE
        statements.append(f"CREATE OR REPLACE VIEW \"{stage}_drops\" AS SELECT * FROM read_parquet('{drops}')")
    if not statements:
        return
    catalog.parent.mkdir(parents=True, exist_ok=True)
    try:
        with duckdb.connect(str(catalog)) as con:
            for statement in statements:
                con.execute(statement)
    except duckdb.IOException as err:  # another process holds the file: the data is written, only the view waits
        log.warning("could not update %s (%s); run `findap catalog` once it is free", catalog, err)


def rebuild_catalog(catalog: Path, data_dir: Path) -> list[str]:
    """Register views for every stage folder under `data_dir` (after `dvc checkout`/`pull`, say)."""
    stages = sorted(
        d.name for d in data_dir.iterdir() if d.is_dir() and (any(d.glob(RECORDS_GLOB)) or (d / DROPS_FILE).exists())
    )
    for stage in stages:
        register_views(catalog, stage, data_dir / stage)
    return stages
