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
LIBRARIES = (
    *("datatrove", "datasketch", "duckdb", "polars", "pyarrow", "numpy", "torch", "transformers", "trl"),
    *("xxhash", "spacy", "fasttext-numpy2-wheel", "py3langid", "lingua-language-detector"),
)


def machine() -> dict[str, Any]:
    """CPU, cores, Python, platform, library versions, date, and the 1-minute load (others may share the machine)."""
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
        "load_average_1m": round(os.getloadavg()[0], 2),
        "date": datetime.date.today().isoformat(),
    }


def write_result(name: str, result: dict[str, Any], path: Path | None = None) -> Path:
    """benchmarks/results/<name>.json with the machine it ran on."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2) + "\n", encoding="utf-8")
    return path
