"""What every benchmark records beside its numbers: the machine, the library versions and the date."""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


RESULTS = Path(__file__).parent / "results"
LIBRARIES = ("datatrove", "datasketch", "duckdb", "polars", "pyarrow", "numpy", "torch", "transformers", "trl")


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": datetime.date.today().isoformat(),
    }


def write_result(name: str, result: dict[str, Any], path: Path | None = None) -> Path:
    """benchmarks/results/<name>.json with the machine it ran on."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2) + "\n", encoding="utf-8")
    return path
