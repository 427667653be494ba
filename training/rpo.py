"""Stage `rpo`: preference alignment of the last curriculum checkpoint on the FAP and SCP pairs, with RPO.

RPO is DPO plus an NLL term on the chosen response (FinDAP): trl's DPO trainer with `loss_type=["sigmoid", "sft"]`
and `loss_weights=[1, alpha]`; `dpo_config` is the one place that is set. The reference model is the policy before
alignment, and it is never held beside the policy: `precompute_ref_log_probs` scores every pair with it once before
training, so aligning costs the memory of one model. A pair's prompt is the chat template's rendering of its
messages; an SCP prompt ends with the assistant's right prefix, which the completion continues
(`continue_final_message`), and every completion ends with the template's end-of-turn marker, as a generated answer
does. Checkpoints go to `--checkpoints` (`persist: true`) and an interrupted run resumes from the last one; DVCLive
logs the loss and trl's rewards/margins; the held-out losses before and after show what alignment cost elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

import pyarrow as pa

from curation.config import load_params, params
from curation.io import read_records, write_metrics
from curation.progress import setup_logging
from curation.schema import CHOSEN, MESSAGES, REJECTED
from training.chat import stop_token_ids
from training.model import ModelParams
from training.trainer import (
    HeldOutParams,
    TrainParams,
    build_training_args,
    checkpoint_step,
    clear,
    held_out_loss,
    held_out_sample,
    is_main,
    last_checkpoint,
    live_callbacks,
    load_model,
    quiet_library_bars,
    stage_args,
    summary_line,
)


log = logging.getLogger("rpo")
STAGE = "rpo"
MARGIN = "rewards/margins"  # trl's log key: beta * (chosen - rejected) log-ratio against the reference


@params
class RpoParams:
    beta: float  # DPO temperature: how far the policy may move from the reference
    alpha: float  # weight of the NLL on the chosen response (RPO); 0 is plain DPO
    max_length: int  # prompt + completion tokens; longer pairs are cut from the end of the completion
    train: TrainParams


def dpo_config(p: RpoParams, output_dir: Path) -> Any:
    """trl's `DPOConfig` for RPO: sigmoid DPO loss + `alpha` x NLL on chosen; reference log-probs computed once."""
    from trl import DPOConfig

    return build_training_args(
        p.train,
        output_dir,
        DPOConfig,
        beta=p.beta,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, p.alpha],
        max_length=p.max_length,
        truncation_mode="keep_start",
        precompute_ref_log_probs=True,  # no second model in memory during training
    )


def dpo_rows(tokenizer: Any, pairs: pa.Table) -> list[dict[str, str]]:
    """trl's standard (string) preference rows: the rendered prompt; each completion ends with the turn's marker."""
    ends = [t for t in stop_token_ids(tokenizer) if t != tokenizer.eos_token_id]
    end = tokenizer.decode(ends[:1])  # trl appends EOS itself
    rows = []
    for messages, chosen, rejected in zip(*(pairs.column(c).to_pylist() for c in (MESSAGES, CHOSEN, REJECTED)),
                                          strict=True):  # fmt: skip
        partial = messages[-1]["role"] == "assistant"
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not partial,
                                               continue_final_message=partial)  # fmt: skip
        rows.append({"prompt": prompt, "chosen": chosen + end, "rejected": rejected + end})
    return rows


def margins(log_history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The logged reward margins: every value, and the mean of the first and of the last quarter of them."""
    values = [(h["step"], h[MARGIN]) for h in log_history if MARGIN in h]
    if not values:
        return {"history": [], "first": None, "last": None}
    quarter = max(1, len(values) // 4)
    return {
        "history": [[s, round(v, 6)] for s, v in values],
        "first": round(fmean(v for _, v in values[:quarter]), 6),
        "last": round(fmean(v for _, v in values[-quarter:]), 6),
    }


def align(
    policy: Path, pairs: pa.Table, p: RpoParams, model_p: ModelParams, output: Path, checkpoints: Path,
    live_dir: Path | None = None, callbacks: Sequence[Any] = (),
) -> dict[str, Any]:  # fmt: skip
    """RPO-train the policy on the pairs, resuming from `checkpoints`; save model and tokenizer to `output`."""
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback
    from trl import DPOTrainer

    if pairs.num_rows == 0:
        raise ValueError("no preference pairs: the pairs stage kept none (see data/metrics/pairs.json, dropped)")
    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    model = load_model(policy, model_p.attn_implementation, model_p.dtype)
    resume = last_checkpoint(checkpoints)
    trainer = DPOTrainer(
        model=model,
        args=dpo_config(p, checkpoints),
        train_dataset=Dataset.from_list(dpo_rows(tokenizer, pairs)),
        processing_class=tokenizer,
        callbacks=[*callbacks, *live_callbacks(live_dir, resume is not None)],
    )
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started
    trainer.save_model(str(output))
    if is_main():
        tokenizer.save_pretrained(str(output))
        (output / "training_args.bin").unlink(missing_ok=True)  # a pickle no consumer of the model reads
    history = trainer.state.log_history
    tokens = next((int(h["num_tokens"]) for h in reversed(history) if "num_tokens" in h), 0)
    return {
        "train_loss": float(result.training_loss),
        "steps": int(trainer.state.global_step),
        "tokens": tokens,  # prompt + chosen + rejected tokens of the pairs trained on (trl's count)
        "tokens_per_s": round(tokens / wall, 1) if wall else None,
        "resumed_from_step": checkpoint_step(resume),
        "pairs": pairs.num_rows,
        "wall_s": round(wall, 2),
        "loss_history": [[h["step"], h["loss"]] for h in history if "loss" in h],
        "margins": margins(history),
        "accuracies": [[h["step"], h["rewards/accuracies"]] for h in history if "rewards/accuracies" in h],
    }


def main(argv: Sequence[str] | None = None) -> None:
    paths, checkpoints = stage_args(argv, __doc__)
    quiet_library_bars()
    p = load_params(STAGE, RpoParams, paths.params)
    model_p = load_params("model", ModelParams, paths.params)
    held = load_params("held_out", HeldOutParams, paths.params)
    pairs_dir, policy, mixture_dir = paths.inputs
    started = time.perf_counter()
    pairs = read_records([pairs_dir])
    cpt, conversations = held_out_sample(mixture_dir, held)

    def measure(folder: Path) -> dict[str, float | None]:
        from transformers import AutoTokenizer

        model = load_model(folder, model_p.attn_implementation, model_p.dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return held_out_loss(model, tokenizer, cpt, conversations, batch_size=held.batch_size,
                             max_length=p.max_length)  # fmt: skip

    before = measure(policy)
    train = align(policy, pairs, p, model_p, paths.output, checkpoints, paths.plots)
    if not is_main():
        return
    clear(checkpoints)
    metrics = {"held_out_before": before, "held_out_after": measure(paths.output), "train": train,
               "wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_metrics(metrics, paths.metrics)
    summary_line(STAGE, metrics)
    log.info("rpo: reward margin %s -> %s over %d pairs", train["margins"]["first"], train["margins"]["last"],
             train["pairs"])  # fmt: skip


if __name__ == "__main__":
    setup_logging()
    main()
