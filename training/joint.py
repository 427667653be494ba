"""Stage `joint`: FinRec joint CPT+IT training over the curriculum groups, each group continuing from the last.

Starting from the base model (data/base), the stage trains on `rows-<group>.parquet` for each group in
`joint.groups`, in order (FinRec: capabilities that others build on first, reasoning last). Each group gets its own
`joint.train.<group>` hyperparameters and a fresh optimizer and schedule; its final weights (safetensors) and the
tokenizer are saved in `<output>/<group>/`, so evaluation can load any point of the curriculum. Held-out CPT and IT
losses are measured before and after every group.

The non-obvious decision is where an unfinished run keeps its state. dvc.yaml declares `--checkpoints` with
`persist: true`; everything resumable lives there: `<group>/trainer/checkpoint-N` (the trainer's own checkpoints),
and, once a group finished, `<group>/model` and `<group>/metrics.json`, after which its trainer checkpoints are
deleted. A rerun skips finished groups and resumes the current one from its last checkpoint. Finished models wait
there, not in the output, because DVC deletes a stage's ordinary outputs before it reruns it; they move to the output
when the last group is done. The cost: up to one extra model copy per group on disk while the stage runs.

Multi-GPU (FSDP, bf16): `accelerate launch --config_file training/fsdp.yaml -m training.joint --input data/base
--input data/pack --input data/mixture --output data/joint --checkpoints data/checkpoints/joint
--metrics data/metrics/joint.json --plots data/plots/joint` (set `num_processes` in training/fsdp.yaml). On a CPU
the stage runs as one process under plain `python -m training.joint`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.config import ConfigError, load_params, params
from curation.io import write_metrics
from curation.progress import setup_logging
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
    train: dict[str, TrainParams]


def check_groups(p: JointParams) -> None:
    """Every group has its own train section and every train section names a group."""
    missing, extra = set(p.groups) - set(p.train), set(p.train) - set(p.groups)
    if missing or extra or len(set(p.groups)) != len(p.groups):
        raise ConfigError(
            f"params.yaml joint: groups {p.groups} (each once) and the keys of joint.train {sorted(p.train)} must "
            f"match; add joint.train entries for {sorted(missing)} or remove {sorted(extra)}"
        )


def train_group(
    group: str,
    start: Path,
    rows: Path,
    p: TrainParams,
    model_p: ModelParams,
    folder: Path,
    measure: Any,
    before: dict[str, float | None] | None,
    live_dir: Path | None,
) -> dict[str, Any]:
    """Train one group from the model in `start`; leave `folder/model` and `folder/metrics.json`; return metrics."""
    model = load_model(start, model_p.attn_implementation, model_p.dtype)
    if before is None and is_main():
        before = measure(model)
    dataset = PackedRows([rows])
    train = fit(
        model,
        [rows],
        p,
        folder / "model",
        folder / "trainer",
        dataset.longest,
        model.config.pad_token_id,
        model_p.attn_implementation,
        model_p.dtype,
        live_dir=live_dir,
    )
    if not is_main():
        return {}
    history = train.pop("loss_history")
    after = measure(load_model(folder / "model", model_p.attn_implementation, model_p.dtype))
    metrics = {
        "held_out_before": before,
        "held_out_after": after,
        "train": {**train, "first_loss": history[0][1] if history else None},
    }
    (folder / DONE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(folder / "trainer", ignore_errors=True)  # group finished: its trainer checkpoints are not needed
    return metrics


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

    start, before, results = base_dir, None, {}
    for group in p.groups:
        folder = checkpoints / group
        if (folder / DONE).is_file():  # finished in an earlier, interrupted run
            results[group] = json.loads((folder / DONE).read_text(encoding="utf-8"))
            log.info("joint: %s finished in an earlier run; continuing from it", group)
        else:
            live_dir = paths.plots / group if paths.plots else None
            results[group] = train_group(
                group, start, groups_rows[group], p.train[group], model_p, folder, measure, before, live_dir
            )
        start, before = folder / "model", results[group].get("held_out_after")
    if not is_main():
        return
    paths.output.mkdir(parents=True, exist_ok=True)
    for group in p.groups:
        shutil.move(checkpoints / group / "model", paths.output / group)
        tokenizer.save_pretrained(str(paths.output / group))
    clear(checkpoints)
    metrics = {"groups": results, "seq_len": seq_len, "wall_s": round(time.perf_counter() - started, 1)}
    write_metrics(metrics, paths.metrics)
    for group in p.groups:
        summary_line(f"{STAGE}@{group}", {**results[group], "wall_s": results[group]["train"]["wall_s"]})


if __name__ == "__main__":
    setup_logging()
    main()
