"""Stage `evaluate@<model>`: every FinEval task for one checkpoint, scored per item, per task and per capability.

Each task leaves `<output>/<task>.parquet` with every prompt, raw output, extracted answer, reference and score
(DuckDB view `evaluate_<model>`), so any number in the metrics traces to the items behind it. Generations are the
expensive part and are kept: a task whose model, prompts and generation settings are unchanged is not generated
again (the fingerprint is in the file), which makes an interrupted run resumable per task. Scores are always
recomputed from the kept outputs, so a metric fix never needs the model.

A task's score is its first metric; a capability's is the mean of its tasks' scores, also split into FinDAP's
`similar` (task types seen in training) and `novel` ones. An unparseable output scores 0 and is counted apart.
Beside the scores, `target_nll` is the model's loss per token on each item's perfect response (lm-eval's
loglikelihood view): it ranks models that are still too weak to answer in the asked form at all.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curation.config import load_params, params
from curation.io import IOParams, register_views, stage_paths, write_metrics
from curation.progress import setup_logging
from evaluation.generate import GenerateParams, answer_loss, checkpoint_digest, generate, load
from evaluation.metrics import METRICS, extract, score
from evaluation.registry import Item, TaskSpec, items, load_tasks


log = logging.getLogger("evaluate")
ITEM_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("id", pa.string()),
        ("capability", pa.string()),
        ("group", pa.string()),
        ("mode", pa.string()),
        ("messages", pa.string()),  # the prompt as JSON chat messages
        ("output", pa.string()),  # the raw generation
        ("extracted", pa.string()),  # what the extractor read from it; null = unparseable
        ("reference", pa.string()),
        ("score", pa.float64()),  # the item's score under the task's first metric
        ("target", pa.string()),  # a perfect response
        ("target_nll", pa.float64()),  # the model's mean loss per token of `target` (lower is better)
    ]
)


@params
class ModelEntry:
    path: str  # checkpoint folder a training stage writes (or a Hub id)
    trained_on: list[str]  # mixture groups the model was trained on, in order (the report shows their shares)


@params
class EvaluateParams:
    tasks: list[str]  # task names or globs over evaluation/tasks/*.yaml
    paths: dict[str, str]  # values for the `{name}` placeholders in task data paths
    models: dict[str, ModelEntry]  # every model to evaluate; dvc.yaml runs one evaluate@<name> per entry
    max_items: int | None  # the first items of each task only (a sampled run); null evaluates every item
    generate: GenerateParams


def fingerprint(model_digest: str, spec: TaskSpec, task_items: Sequence[Item], gen: GenerateParams) -> str:
    """What a task's generations depend on: the model's bytes (`checkpoint_digest`), the prompts and the settings."""
    setting = [model_digest, spec.max_new_tokens, gen.device, gen.dtype]
    setting.append([(i.id, i.messages, i.target) for i in task_items])
    return xxhash.xxh3_128_hexdigest(json.dumps(setting, sort_keys=True))


def score_task(
    spec: TaskSpec, task_items: Sequence[Item], outputs: Sequence[str], target_nll: Sequence[float] | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """Per-item rows and the task's metrics for given outputs (and the model's loss on the targets, when known);
    pure, so the oracle and shuffle tests call it."""
    extracted = [extract(o, spec.extract.kind, **(spec.extract.options or {})) for o in outputs]
    references = [i.reference for i in task_items]
    metrics: dict[str, Any] = {
        "capability": str(spec.capability), "group": spec.group, "mode": spec.mode, "metric": spec.metrics[0]
    }  # fmt: skip
    item_scores: list[float] = []
    for k, name in enumerate(spec.metrics):
        options = {k: v for k, v in (spec.metric_options or {}).items() if k in METRICS[name].options}
        scores, value = score(extracted, references, name, **options)
        metrics[name] = value
        item_scores = scores if k == 0 else item_scores
    metrics |= {"n": len(task_items), "unparsed": sum(e is None for e in extracted), "score": metrics[spec.metrics[0]]}
    if target_nll is not None:
        metrics["target_nll"] = round(mean(target_nll), 4)
    table = pa.table(
        {
            "task": [spec.task] * len(task_items),
            "id": [i.id for i in task_items],
            "capability": [str(spec.capability)] * len(task_items),
            "group": [spec.group] * len(task_items),
            "mode": [spec.mode] * len(task_items),
            "messages": [json.dumps(i.messages) for i in task_items],
            "output": list(outputs),
            "extracted": extracted,
            "reference": references,
            "score": item_scores,
            "target": [i.target for i in task_items],
            "target_nll": list(target_nll) if target_nll is not None else [None] * len(task_items),
        },
        schema=ITEM_SCHEMA,
    )
    return table, metrics


def summarize(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Capability scores (mean of task scores, and split into similar/novel), group means and the overall mean;
    a capability's `target_nll` is the mean of its tasks' when every task has one."""
    by_capability: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_group: dict[str, list[float]] = defaultdict(list)
    with_nll = all("target_nll" in m for m in tasks.values())
    for m in tasks.values():
        by_capability[m["capability"]]["score"].append(m["score"])
        by_capability[m["capability"]][m["group"]].append(m["score"])
        by_group[m["group"]].append(m["score"])
        if with_nll:
            by_capability[m["capability"]]["target_nll"].append(m["target_nll"])
    capabilities = {c: {k: round(mean(v), 4) for k, v in sorted(s.items())} for c, s in sorted(by_capability.items())}
    return {
        "capabilities": capabilities,
        "groups": {g: round(mean(v), 4) for g, v in sorted(by_group.items())},
        "overall": round(mean(c["score"] for c in capabilities.values()), 4),
    }


def _cached(path: Path, key: str) -> tuple[list[str], list[float]] | None:
    """The outputs and target losses kept from a run with the same fingerprint and schema, else None."""
    if not path.exists() or (schema := pq.read_schema(path)).metadata.get(b"fingerprint", b"").decode() != key:
        return None
    if not schema.equals(ITEM_SCHEMA, check_metadata=False):
        return None
    table = pq.read_table(path, columns=["output", "target_nll"])
    return table.column("output").to_pylist(), table.column("target_nll").to_pylist()


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__.splitlines()[0])
    setup_logging()
    p = load_params("evaluate", EvaluateParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    (model_dir,) = paths.inputs
    name = paths.output.name
    started = time.perf_counter()
    specs = load_tasks(p.tasks)
    digest = checkpoint_digest(model_dir)  # once: it reads every byte of the checkpoint
    paths.output.mkdir(parents=True, exist_ok=True)
    for stale in set(paths.output.glob("*.parquet")) - {paths.output / f"{s.task}.parquet" for s in specs}:
        stale.unlink()
    loaded: tuple[Any, Any] | None = None
    tasks: dict[str, dict[str, Any]] = {}
    generated = 0
    for spec in specs:
        task_items = items(spec, p.paths)[: p.max_items]
        out = paths.output / f"{spec.task}.parquet"
        key = fingerprint(digest, spec, task_items, p.generate)
        kept = _cached(out, key)
        if kept is None:
            loaded = loaded or load(model_dir, p.generate)
            conversations = [i.messages for i in task_items]
            outputs = [o[0] for o in generate(*loaded, conversations, spec.max_new_tokens, p.generate.batch_size,
                                              description=f"{name}: {spec.task}")]  # fmt: skip
            target_nll = answer_loss(*loaded, conversations, [i.target for i in task_items], p.generate.batch_size,
                                     description=f"{name}: {spec.task} (target loss)")  # fmt: skip
            generated += len(task_items)
        else:
            outputs, target_nll = kept
            log.info("%s: %s unchanged, outputs reused", name, spec.task)
        table, tasks[spec.task] = score_task(spec, task_items, outputs, target_nll)
        tmp = out.with_name(f".{out.name}.tmp")
        pq.write_table(table.replace_schema_metadata({"fingerprint": key}), tmp, compression=io.compression)
        tmp.replace(out)
        log.info("%s: %s %s = %.3f (%d items, %d unparsed)", name, spec.task, spec.metrics[0],
                 tasks[spec.task]["score"], len(task_items), tasks[spec.task]["unparsed"])  # fmt: skip
    metrics = {"model": name, "path": str(model_dir), "tasks": tasks, **summarize(tasks)}
    metrics["generation"] = {"items_generated": generated, "seconds": round(time.perf_counter() - started, 1)}
    write_metrics(metrics, paths.metrics)
    register_views(Path(io.catalog), f"evaluate_{name}", paths.output, extra={f"evaluate_{name}": "*.parquet"})
    log.info("evaluate %s: overall %.3f over %d tasks", name, metrics["overall"], len(tasks))


if __name__ == "__main__":
    main()
