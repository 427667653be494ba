"""Curation speed, stage by stage, on more than 20k documents of real text from ../shared/data.

The corpus: Reuters-21578 stories (news), 10-K MD&A sections cut into 300-800-word chunks (filings), FOMC minutes
and press conferences in 400-word chunks (fomc), GUM English documents in 200-word chunks (general), German, French,
Spanish and Chinese sentences grouped five to a page (web), and Financial PhraseBank sentences as evaluation items.
It is written as JSONL sources, then every stage's `main()` runs in turn, as `dvc repro` would, with the shipped
params (executor: one task, one worker) except the sources and the domain seeds. Per stage: documents in, wall
seconds, CPU seconds of this process (the local executor with one worker runs in it) and docs/s per core (documents
over CPU seconds); end to end, MB of input text per second.

    python -m benchmarks.bench_curation
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import write_result
from curation import clean, decontam, dedup, domain, ingest, language, quality
from curation.config import PARAMS_FILE
from tests import realdata


STAGES = {
    "ingest": ingest,
    "clean": clean,
    "language": language,
    "quality": quality,
    "domain": domain,
    "dedup": dedup,
    "decontam": decontam,
}


def corpus() -> dict[str, list[dict[str, Any]]]:
    """Source name -> rows, from the real data."""
    fomc = [c for text in realdata.fomc_cleaned() for c in realdata.word_chunks(text, 400)]
    sentences = [s for rows in realdata.sentence_files(realdata.UD, strip=True).values() for s in rows]
    return {
        "news": [{"text": t} for t in realdata.reuters_cleaned()],
        "filings": [{"text": c} for t in realdata.mdna_cleaned() for c in realdata.line_chunks(t)],
        "fomc": [{"text": c} for c in fomc],
        "general": [
            {"text": c}
            for s in ("dev", "test")
            for t in realdata.gum_documents(s)
            for c in realdata.word_chunks(t, 200)
        ],
        "web": [{"text": page} for page in realdata.sentence_groups(sentences, 5)],
        "fpb": [{"prompt": sentence, "answer": label} for _, sentence, label in realdata.phrasebank()],
    }


def source(name: str, path: Path) -> dict[str, Any]:
    is_eval = name == "fpb"
    return {
        "name": name, "path": str(path), "format": "jsonl", "kind": "eval" if is_eval else "cpt",
        "capability": "tasks" if is_eval else "concepts", "split": "eval" if is_eval else "train",
        "language": "und" if name == "web" else "en", "license": "see ../shared/data", "options": {},
        "templates": {}, "max_rows": None,
        "fields": {"prompt": "prompt"} if is_eval else {},
    }  # fmt: skip


def main() -> None:
    rows = corpus()
    n_docs = sum(len(r) for name, r in rows.items() if name != "fpb")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = yaml.safe_load(Path(PARAMS_FILE).read_text())
        params["io"]["catalog"] = str(root / "catalog.duckdb")
        params["ingest"]["sources"] = []
        text_bytes = 0
        for name, items in rows.items():
            path = root / f"{name}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
            text_bytes += sum(len(r.get("text", "").encode()) for r in items)
            params["ingest"]["sources"].append(source(name, path))
        params["domain"].update(
            finance_sources=["filings", "fomc"], general_sources=["general"], apply_to_sources=["news", "web"]
        )
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        results, previous, total_wall = {}, None, 0.0
        for stage, module in STAGES.items():
            out = root / stage
            argv = [
                "--output",
                str(out),
                "--metrics",
                str(root / f"{stage}.json"),
                "--params",
                str(root / "params.yaml"),
            ]
            if previous is not None:
                argv = ["--input", str(previous), *argv]
            wall, cpu = time.perf_counter(), time.process_time()
            module.main(argv)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            metrics = json.loads((root / f"{stage}.json").read_text())
            results[stage] = {
                "in": metrics["in"], "kept": metrics["kept"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                "docs_per_s_per_core": round(metrics["in"] / cpu, 1),
            }  # fmt: skip
            total_wall += wall
            previous = out
    print(f"{n_docs:,} documents ({text_bytes / 1e6:.1f} MB of text) + {len(rows['fpb']):,} eval items")
    print(f"{'stage':<10}{'in':>9}{'kept':>9}{'wall s':>9}{'CPU s':>9}{'docs/s/core':>13}")
    for stage, r in results.items():
        print(f"{stage:<10}{r['in']:>9,}{r['kept']:>9,}{r['wall_s']:>9}{r['cpu_s']:>9}{r['docs_per_s_per_core']:>13,}")
    mb_s = text_bytes / 1e6 / total_wall
    print(f"end to end: {total_wall:.1f} s wall, {mb_s:.2f} MB/s")
    result = {"documents": n_docs, "text_mb": round(text_bytes / 1e6, 2), "stages": results}
    write_result(
        "curation", {**result, "end_to_end_wall_s": round(total_wall, 1), "end_to_end_mb_per_s": round(mb_s, 3)}
    )


if __name__ == "__main__":
    main()
