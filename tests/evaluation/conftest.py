"""The default world's evaluation items as curated records, the data the fintrain_* tasks read (offline, seeded)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from curation import ingest, world
from curation.config import load_params
from curation.io import IOParams, write_drops, write_records
from tests.conftest import PARAMS


@pytest.fixture(scope="session")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ingested eval_* sources of the default world (curation never drops an evaluation item, so this is what
    data/decontam holds of them)."""
    root = tmp_path_factory.mktemp("world")
    rows = world.generate(load_params("world", world.WorldParams, PARAMS))
    sources = [s for s in load_params("ingest", ingest.IngestParams, PARAMS).sources if s.split == "eval"]
    world.write_world({s.name: rows[Path(s.path).stem] for s in sources}, root, malformed_rows=0)
    table, rejects, _ = ingest.run([dataclasses.replace(s, path=str(root / f"{s.name}.jsonl")) for s in sources])
    assert not rejects
    io = load_params("io", IOParams, PARAMS)
    write_records(table, root / "curated", io)
    write_drops([], root / "curated", io)  # a stage folder holds its drops beside the records: tasks must skip them
    return root / "curated"
