"""Stage `joint`: FinRec joint CPT+IT training over the curriculum groups, each group continuing from the last.

Starting from the base model (data/base), the stage trains on `rows-<group>.parquet` for each group in
`joint.groups`, in order (FinRec: capabilities that others build on first, reasoning last). Within a group,
`joint.phases` says which kinds are trained together, phase after phase: `[[cpt, it]]` is FinRec's joint CPT+IT (a
group's CPT and IT rows shuffled into one run), `[[cpt], [it]]` FinDAP's sequential baseline (the CPT rows, then the
IT rows, as separate runs), `[[it]]` IT alone. A group's `joint.train.<group>.max_steps` is shared over its phases
in proportion to their rows, so every recipe spends the same compute on the same data; each phase gets a fresh
optimizer and schedule. A group's final weights (safetensors) and the tokenizer are saved in `<output>/<group>/`, so
evaluation can load any point of the curriculum. Held-out CPT and IT losses are measured before a group and after
every phase: the forgetting of a sequential recipe shows between its phases.

The non-obvious decision is where an unfinished run keeps its state. dvc.yaml declares `--checkpoints` with
`persist: true`; everything resumable lives there: `<group>/<k>-<phase>/trainer/checkpoint-N` (the trainer's own
checkpoints), and, once a phase finished, `<group>/<k>-<phase>/model` and `metrics.json`, after which its trainer
checkpoints are deleted. A rerun skips finished phases and resumes the current one from its last checkpoint.
Finished models wait there, not in the output, because DVC deletes a stage's ordinary outputs before it reruns it;
a group's last model moves to the output when the last group is done. The cost: up to one extra model copy per phase
on disk while the stage runs.

Multi-GPU (FSDP, bf16): `accelerate launch --config_file training/fsdp.yaml -m training.joint --input data/base
--input data/pack --input data/mixture --output data/joint --checkpoints data/checkpoints/joint
--metrics data/metrics/joint.json --plots data/plots/joint` (set `num_processes` in training/fsdp.yaml). On a CPU
the stage runs as one process under plain `python -m training.joint`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curation.config import ConfigError, load_params, params
from curation.io import write_metrics
from curation.progress import setup_logging
from curation.schema import Kind
from training.chat import TRAINED_KINDS, phase_label
from training.model import ModelParams
from training.trainer import (
    HeldOutParams,
    PackedRows,
    TrainParams,
    clear,
    fit,
    held_out_loss,
    held_out_sample,
    is_main,
    load_model,
    quiet_library_bars,
    rows_file,
    stage_args,
    summary_line,
)


log = logging.getLogger(__name__)
STAGE = "joint"
DONE = "metrics.json"  # in <checkpoints>/<group>/: the group finished; its metrics


@params
class JointParams:
    groups: list[str]
    phases: list[list[Kind]]
    train: dict[str, TrainParams]


def check_groups(p: JointParams) -> None:
    """Every group has its own train section and every train section names a group; each kind in one phase."""
    missing, extra = set(p.groups) - set(p.train), set(p.train) - set(p.groups)
    if missing or extra or len(set(p.groups)) != len(p.groups):
        raise ConfigError(
            f"params.yaml joint: groups {p.groups} (each once) and the keys of joint.train {sorted(p.train)} must "
            f"match; add joint.train entries for {sorted(missing)} or remove {sorted(extra)}"
        )
    kinds = [k for phase in p.phases for k in phase]
    if not all(p.phases) or len(set(kinds)) != len(kinds) or not set(kinds) <= set(TRAINED_KINDS):
        raise ConfigError(
            f"params.yaml joint.phases {p.phases}: non-empty lists of the kinds cpt and it, each kind in one phase; "
            "[[cpt, it]] is joint training, [[cpt], [it]] sequential, [[it]] IT alone"
        )


def phase_name(index: int, kinds: Sequence[str]) -> str:
    return f"{index}-{phase_label(kinds)}"


def phase_steps(max_steps: int | None, rows: Sequence[int]) -> list[int | None]:
    """A group's `max_steps` shared over its phases in proportion to their rows (largest remainder), at least one
    step for a phase with rows and none for a phase without; None (train `epochs` passes) stays None."""
    if max_steps is None:
        return [None if n else 0 for n in rows]
    live = [i for i, n in enumerate(rows) if n]
    if len(live) > max_steps:
        raise ConfigError(f"params.yaml joint.train: max_steps={max_steps} is fewer than the {len(live)} phases")
    total = sum(rows)
    steps = [max_steps * n // total if n else 0 for n in rows]
    for i in live:  # every phase with rows trains at least one step
        steps[i] = max(steps[i], 1)
    by_remainder = sorted(live, key=lambda i: (-(max_steps * rows[i] % total), i))
    k = 0
    while sum(steps) != max_steps:  # hand the rounding difference out by largest remainder, then take it back
        i = by_remainder[k % len(by_remainder)]
        if sum(steps) < max_steps:
            steps[i] += 1
        elif steps[i] > 1:
            steps[i] -= 1
        k += 1
    return steps


def train_phase(
    start: Path,
    dataset: PackedRows,
    p: TrainParams,
    model_p: ModelParams,
    folder: Path,
    measure: Any,
    live_dir: Path | None,
    append_live: bool,
) -> dict[str, Any]:
    """Train one phase from the model in `start`; leave `folder/model` and `folder/metrics.json`; return metrics."""
    model = load_model(start, model_p.attn_implementation, model_p.dtype)
    train = fit(
        model,
        dataset,
        p,
        folder / "model",
        folder / "trainer",
        dataset.longest,
        model.config.pad_token_id,
        model_p.attn_implementation,
        model_p.dtype,
        live_dir=live_dir,
        append_live=append_live,
    )
    if not is_main():
        return {}
    history = train.pop("loss_history")
    after = measure(load_model(folder / "model", model_p.attn_implementation, model_p.dtype))
    metrics = {"held_out_after": after, "train": {**train, "first_loss": history[0][1] if history else None}}
    (folder / DONE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(folder / "trainer", ignore_errors=True)  # phase finished: its trainer checkpoints are not needed
    return metrics


def train_group(
    group: str,
    start: Path,
    rows: Path,
    p: JointParams,
    model_p: ModelParams,
    folder: Path,
    measure: Any,
    before: dict[str, float | None] | None,
    live_dir: Path | None,
) -> tuple[Path, dict[str, Any]]:
    """Train a group's phases from the model in `start`, skipping finished ones; its last model and its metrics."""
    if before is None and is_main():
        before = measure(load_model(start, model_p.attn_implementation, model_p.dtype))
    packed = set(pq.read_table(rows, columns=["phase"]).column("phase").to_pylist())
    if not packed <= {phase_label(kinds) for kinds in p.phases}:
        raise ValueError(
            f"{rows}: rows packed for the phases {sorted(packed)}, but joint.phases is {p.phases}; "
            "pack follows joint.phases: rerun it (dvc repro pack)"
        )
    datasets = [PackedRows([rows], kinds) for kinds in p.phases]
    steps = phase_steps(p.train[group].max_steps, [len(d) for d in datasets])
    phases: dict[str, Any] = {}
    for index, (kinds, dataset, n) in enumerate(zip(p.phases, datasets, steps, strict=True)):
        name = phase_name(index, kinds)
        if not len(dataset):
            log.info("joint: %s has no %s rows; phase %s skipped", group, "/".join(kinds), name)
            continue
        done = folder / name / DONE
        if done.is_file():  # finished in an earlier, interrupted run
            phases[name] = json.loads(done.read_text(encoding="utf-8"))
            log.info("joint: %s phase %s finished in an earlier run; continuing from it", group, name)
        else:
            train_p = dataclasses.replace(p.train[group], max_steps=n)
            append = bool(phases)  # a later phase continues the group's one training curve
            phases[name] = train_phase(start, dataset, train_p, model_p, folder / name, measure, live_dir, append)
        start = folder / name / "model"
    if not phases:
        raise ValueError(f"{rows}: no rows of the kinds {p.phases} in group {group!r}; nothing to train on")
    last = phases[next(reversed(phases))] if is_main() else {}
    trains = [ph["train"] for ph in phases.values()] if is_main() else []
    wall = sum(t["wall_s"] for t in trains)
    train = {
        "steps": sum(t["steps"] for t in trains),
        "tokens": sum(t["tokens"] for t in trains),
        "tokens_per_s": round(sum(t["tokens"] for t in trains) / wall, 1) if wall else None,
        "wall_s": round(wall, 2),
    }
    metrics = {"held_out_before": before, "held_out_after": last.get("held_out_after"), "train": train,
               "phases": phases}  # fmt: skip
    return start, metrics


def main(argv: Sequence[str] | None = None) -> None:
    from transformers import AutoTokenizer

    paths, checkpoints = stage_args(argv, __doc__)
    quiet_library_bars()
    p = load_params(STAGE, JointParams, paths.params)
    check_groups(p)
    model_p = load_params("model", ModelParams, paths.params)
    held = load_params("held_out", HeldOutParams, paths.params)
    started = time.perf_counter()
    base_dir, pack_dir, mixture_dir = paths.inputs
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    cpt, conversations = held_out_sample(mixture_dir, held)
    groups_rows = {g: rows_file(pack_dir, g) for g in p.groups}  # fail before training if any group is missing
    seq_len = max(PackedRows([r]).longest for r in groups_rows.values())

    def measure(m: Any) -> dict[str, float | None]:
        return held_out_loss(m, tokenizer, cpt, conversations, batch_size=held.batch_size, max_length=seq_len)

    start, before, results, last = base_dir, None, {}, {}
    for group in p.groups:
        live_dir = paths.plots / group if paths.plots else None
        start, results[group] = train_group(
            group, start, groups_rows[group], p, model_p, checkpoints / group, measure, before, live_dir
        )
        last[group], before = start, results[group]["held_out_after"]
    if not is_main():
        return
    paths.output.mkdir(parents=True, exist_ok=True)
    for group in p.groups:
        shutil.move(last[group], paths.output / group)
        tokenizer.save_pretrained(str(paths.output / group))
    clear(checkpoints)
    metrics = {"phases": p.phases, "groups": results, "seq_len": seq_len,
               "wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_metrics(metrics, paths.metrics)
    for group in p.groups:
        summary_line(f"{STAGE}@{group}", {**results[group], "wall_s": results[group]["train"]["wall_s"]})


if __name__ == "__main__":
    setup_logging()
    main()
