"""Build tiny stage inputs and run a stage's main() in a temp project, as DVC would."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from curation.config import load_params
from curation.io import IOParams, write_drops, write_records
from curation.schema import RECORD_SCHEMA, content_key, dump_metadata, record_id
from tests.conftest import PARAMS


def make_record(text: str | None = None, *, kind: str = "cpt", source: str = "s", **cols: Any) -> dict[str, Any]:
    """A record with the schema's columns; `metadata` may be given as a dict."""
    record = dict.fromkeys(RECORD_SCHEMA.names)
    record.update(kind=kind, source=source, capability="concepts", language="en", split="train", text=text)
    record.update(cols)
    record["metadata"] = dump_metadata(record["metadata"] or {})
    key = content_key(kind, record["text"], record["messages"], record["answer"])
    record["id"] = record_id(source, key)
    return record


def write_input(folder: Path, records: list[dict[str, Any]], rows_per_shard: int = 1000) -> Path:
    """A stage folder as a stage leaves it: record shards and a (here empty) drops file."""
    io = dataclasses.replace(load_params("io", IOParams, PARAMS), rows_per_shard=rows_per_shard)
    write_records(pa.Table.from_pylist(records, schema=RECORD_SCHEMA), folder, io)
    write_drops([], folder, io)
    return folder


def project(tmp_path: Path, **sections: Any) -> Path:
    """A params.yaml in tmp_path: the shipped one with whole keys of sections replaced."""
    data = yaml.safe_load(PARAMS.read_text())
    data["io"]["catalog"] = str(tmp_path / "catalog.duckdb")
    for section, changes in sections.items():
        data[section] = {**data[section], **changes}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_main(main: Any, tmp_path: Path, params: Path, inputs: list[Path], name: str) -> dict[str, Any]:
    out, metrics = tmp_path / name, tmp_path / f"{name}.json"
    argv = [a for folder in inputs for a in ("--input", str(folder))]
    main([*argv, "--output", str(out), "--metrics", str(metrics), "--params", str(params)])
    return json.loads(metrics.read_text())
