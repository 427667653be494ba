"""FinEval tasks as lm-evaluation-harness tasks: `python -m evaluation.export --tasks 'fintrain_*' --output DIR`.

Each task becomes `<task>.jsonl` (its rendered items) and `<task>.yaml` (a `generate_until` task over that file),
with a `utils.py` whose `process_results` and `aggregate` call this toolkit's extractors and metrics, so a harness
run scores every item exactly as stage `evaluate` does (macro-F1 and entity micro-F1 included). Then:

    lm_eval --model hf --model_args pretrained=data/joint/reasoning --include_path DIR --tasks findap_fpb \
        --apply_chat_template

The system prompt becomes the task's `description`, which the harness sends as the system turn with a chat template.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from curation.config import load_params
from curation.progress import setup_logging
from evaluation.evaluate import EvaluateParams
from evaluation.metrics import METRICS, extract, score
from evaluation.registry import TASKS_DIR, TaskSpec, items, load_task, load_tasks


PREFIX = "findap_"  # harness task names: its own registry has an `fpb` and a `headlines` too
UTILS = (
    '"""Written by evaluation.export: the harness scores with the toolkit\'s own extractors and metrics."""\n\n'
    "from evaluation.export import aggregate, process_results  # noqa: F401\n"
)


def harness_config(spec: TaskSpec, data_file: Path) -> dict[str, Any]:
    """The lm-eval YAML of one task; `!function` references are written as placeholders and swapped in `write`."""
    config: dict[str, Any] = {
        "task": PREFIX + spec.task,
        "tag": [f"{PREFIX}{spec.capability}", f"{PREFIX}{spec.group}"],
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "generation_kwargs": {"until": [], "max_gen_toks": spec.max_new_tokens, "do_sample": False},
        "process_results": "@process_results",
        "metric_list": [{"metric": m, "aggregation": "@aggregate", "higher_is_better": True} for m in spec.metrics],
        "metadata": {"version": spec.version, "findap_task": spec.task},
    }
    if spec.system_prompt:
        config["description"] = spec.system_prompt
    return config


def write(specs: Sequence[TaskSpec], paths: dict[str, str], output: Path) -> list[Path]:
    """Every task's items and config under `output`; returns the YAML files."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "utils.py").write_text(UTILS, encoding="utf-8")
    written = []
    for spec in specs:
        data_file = output / f"{spec.task}.jsonl"
        with data_file.open("w", encoding="utf-8") as f:
            for item in items(spec, paths):
                system = [m["content"] for m in item.messages if m["role"] == "system"]
                doc = {"task": spec.task, "id": item.id, "prompt": item.messages[-1]["content"],
                       "system": system[0] if system else None, "reference": item.reference}  # fmt: skip
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        text = yaml.safe_dump(harness_config(spec, data_file), sort_keys=False, allow_unicode=True)
        for name in ("process_results", "aggregate"):
            text = text.replace(f"'@{name}'", f"!function utils.{name}")
        path = output / f"{spec.task}.yaml"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@functools.cache
def _spec(task: str) -> TaskSpec:
    """A task's spec, parsed once: the harness calls `process_results` for every item."""
    return load_task(TASKS_DIR / f"{task}.yaml")


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, tuple[str, str, str | None, str]]:
    """Per metric of the doc's task: (task, metric, extracted answer, reference), for `aggregate` to score together."""
    spec = _spec(doc["task"])
    extracted = extract(results[0], spec.extract.kind, **(spec.extract.options or {}))
    return {m: (spec.task, m, extracted, doc["reference"]) for m in spec.metrics}


def aggregate(rows: list[tuple[str, str, str | None, str]]) -> float:
    """A metric's task value over all items (not always their mean: macro-F1, entity micro-F1)."""
    task, metric = rows[0][:2]
    spec = _spec(task)
    options = {k: v for k, v in (spec.metric_options or {}).items() if k in METRICS[metric].options}
    return score([r[2] for r in rows], [r[3] for r in rows], metric, **options)[1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", required=True, help="task names or globs over evaluation/tasks")
    parser.add_argument("--output", type=Path, required=True, help="folder for the harness tasks")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="for evaluate.paths")
    args = parser.parse_args(argv)
    setup_logging()
    paths = load_params("evaluate", EvaluateParams, args.params).paths
    for path in write(load_tasks(args.tasks), paths, args.output):
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
