"""The lm-evaluation-harness export: the harness loads every exported task, and its scoring of any outputs equals
stage evaluate's."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evaluation.evaluate import score_task
from evaluation.export import PREFIX, aggregate, process_results, write
from evaluation.registry import items, load_tasks


lm_eval = pytest.importorskip("lm_eval", reason="the export is checked against the harness itself (extra: test)")

TASKS = ["fintrain_sentiment", "fintrain_ner", "fintrain_program", "fintrain_constraints"]


@pytest.fixture(scope="module")
def exported(curated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("harness")
    write(load_tasks(TASKS), {"curated": str(curated)}, folder)
    return folder


def test_the_harness_loads_every_exported_task_with_its_items(exported: Path, curated: Path) -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(exported), include_defaults=False)
    loaded = manager.load([PREFIX + t for t in TASKS])["tasks"]
    for spec in load_tasks(TASKS):
        task = loaded[PREFIX + spec.task]
        docs = list(task.test_docs())
        ours = items(spec, {"curated": str(curated)})
        assert [d["id"] for d in docs] == [i.id for i in ours]
        assert task.doc_to_text(docs[0]) == ours[0].messages[-1]["content"]
        assert task.config.generation_kwargs["max_gen_toks"] == spec.max_new_tokens
        assert [m["metric"] for m in task.config.metric_list] == spec.metrics


@pytest.mark.parametrize("task", TASKS)
def test_harness_scoring_equals_the_evaluate_stage(task: str, exported: Path, curated: Path) -> None:
    (spec,) = load_tasks([task])
    ours = items(spec, {"curated": str(curated)})
    docs = [json.loads(line) for line in (exported / f"{task}.jsonl").read_text().splitlines()]
    outputs = random.Random(0).sample([i.target for i in ours], len(ours))  # wrong answers and right ones
    _, metrics = score_task(spec, ours, outputs)
    per_metric = [process_results(doc, [out]) for doc, out in zip(docs, outputs, strict=True)]
    for metric in spec.metrics:
        assert aggregate([r[metric] for r in per_metric]) == pytest.approx(metrics[metric])
