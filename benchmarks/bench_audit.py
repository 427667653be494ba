"""Audit speed over 1M metadata rows (target: under 1 s on the 2-core machine).

Builds a two-stage chain (1M records in, 1M kept or dropped out) whose records carry only metadata (no text), then
times `curation.audit.run`: the accounting check (every id kept or dropped exactly once), the funnel by stage,
source, capability, kind and outcome, and the score distributions.

    python -m benchmarks.bench_audit [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.common import write_result
from curation.audit import AuditParams, run
from curation.config import load_params
from curation.io import IOParams, write_drops, write_records
from curation.schema import DROP_SCHEMA, RECORD_SCHEMA


def records(n: int, rng: np.random.Generator) -> pa.Table:
    caps = np.array(["concepts", "tasks", "reasoning", "instruction_following", "general"])[rng.integers(0, 5, n)]
    sources = np.array([f"source_{i}" for i in range(16)])[rng.integers(0, 16, n)]
    scores = rng.random((n, 2)).round(4)
    metadata = [json.dumps({"language": {"lang": "en", "score": a}, "domain": {"score": b}}) for a, b in scores]
    columns = {
        "id": [f"{i:016x}" for i in range(n)],
        "kind": np.where(rng.random(n) < 0.6, "cpt", "it"),
        "source": sources,
        "capability": caps,
        "language": ["en"] * n,
        "split": ["train"] * n,
        "metadata": metadata,
    }
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in RECORD_SCHEMA}, schema=RECORD_SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    io = load_params("io", IOParams)
    rng = np.random.default_rng(0)
    table = records(args.rows, rng)
    dropped = rng.random(args.rows) < 0.1
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "clean", Path(tmp) / "quality"
        write_records(table, first, io)
        write_drops([], first, io)
        write_records(table.filter(pa.array(~dropped)), second, io)
        drops = table.filter(pa.array(dropped)).to_pylist()
        reasons = {"reason": "quality.too_few_words", "detail": "bench"}
        write_drops(pa.Table.from_pylist([{**r, **reasons} for r in drops], schema=DROP_SCHEMA), second, io)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            metrics, _ = run([first, second], load_params("audit", AuditParams))
            times.append(time.perf_counter() - start)
    assert metrics["stages"]["quality"]["kept"] == int((~dropped).sum())
    best = min(times)
    print(f"audit over {args.rows:,} metadata rows x 2 stages: best {best:.3f} s of {len(times)} (target < 1 s)")
    path = write_result(
        "audit", {"rows": args.rows, "seconds": [round(t, 3) for t in times], "best_s": round(best, 3)}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
