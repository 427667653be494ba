"""What every training stage shares: params, `TrainingArguments`, packed-row data, `fit`, resume and held-out loss.

`fit` runs `transformers.Trainer` unchanged except for one override: `training_step` counts the real (non-padding)
tokens of each batch into `TrainerState.num_input_tokens_seen`. The library can count "non_padding" tokens itself,
but it sums `attention_mask`, and ours is the 4-D block-causal mask of training/attention.py (L x L per row), so it
would report about L times too many. The count travels in the batch under `NUM_TOKENS`, set by the collator from
`seq_lengths` and popped before the forward; because it lives in the trainer state it survives a resume. The cost
is a subclass whose `training_step` must keep the library's signature.

Checkpoints (weights as safetensors, plus the library's optimizer, scheduler and RNG state, which are torch pickles
that only we write and read) go to a stage's `--checkpoints` folder, which dvc.yaml marks `persist: true` so that an
interrupted `dvc repro` resumes from the last one. The final model is saved apart from them with `save_pretrained`,
and DVCLive logs into the stage's `--plots` folder, never into a model folder.

Multi-GPU: every process runs `fit` (`accelerate launch`, see training/joint.py); only the main one logs to DVCLive,
computes held-out losses and writes metrics (`is_main`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from curation.config import params
from curation.io import DROPS_FILE, StagePaths, stage_paths
from curation.schema import ANSWER, ID, MESSAGES, TEXT, reason
from training.chat import IGNORE, phase_label, tokenize_chat, tokenize_cpt


if TYPE_CHECKING:
    from transformers import PreTrainedModel, TrainingArguments


log = logging.getLogger(__name__)
T = TypeVar("T")
NUM_TOKENS = "num_tokens"  # batch key: real tokens in the batch, popped by the trainer before the forward
ROWS_FILE = "rows-{group}.parquet"  # the packed rows of one group, as training/pack.py names them
SAMPLES_FILE = "samples.parquet"  # training/sample.py's trajectories, which training/judge.py reads
JUDGEMENTS_FILE = "judgements.parquet"  # training/judge.py's verdicts, which training/pairs.py reads
ROW_COLUMNS = ["input_ids", "labels", "seq_lengths"]
HELD_OUT_CPT = reason("mixture", "cpt_downsampled")  # CPT text the mixture left out: never trained on
HELD_OUT_IT = reason("mixture", "eval_item")  # evaluation items: prompt `messages` + gold `answer`


@params
class TrainParams:
    learning_rate: float
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    epochs: float
    max_steps: int | None
    per_device_batch_size: int
    gradient_accumulation_steps: int
    max_grad_norm: float
    seed: int
    logging_steps: int
    save_steps: int
    save_total_limit: int


@params
class HeldOutParams:
    cpt_texts: int
    conversations: int
    seed: int
    batch_size: int


def is_main() -> bool:
    """True in a single process and in the first of an `accelerate launch`/`torchrun` group."""
    return int(os.environ.get("RANK", "0")) == 0


def quiet_library_bars() -> None:
    """Turn transformers' own progress bars (weight loading and saving) off when stderr is not a terminal."""
    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def stage_args(argv: Sequence[str] | None, description: str) -> tuple[StagePaths, Path]:
    """The stage paths plus `--checkpoints`, the folder dvc.yaml keeps between runs (`persist: true`) for resume."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--checkpoints", type=Path, required=True, help="resumable trainer checkpoints")
    args, rest = parser.parse_known_args(argv)
    return stage_paths(rest, description), args.checkpoints


def build_training_args(
    p: TrainParams, output_dir: Path, args_class: type[TrainingArguments] | None = None, **extra: Any
) -> TrainingArguments:
    """`TrainingArguments` (or a subclass such as trl's `DPOConfig`, with its `extra` fields) for `p`, checkpointing
    into `output_dir`: the one place our keys meet the library's."""
    import torch
    from transformers import TrainingArguments

    if not 0 <= p.warmup_ratio < 1:
        raise ValueError(f"params.yaml: warmup_ratio={p.warmup_ratio} must be in [0, 1), a share of the steps")
    cuda = torch.cuda.is_available()
    return (args_class or TrainingArguments)(
        output_dir=str(output_dir),
        learning_rate=p.learning_rate,
        lr_scheduler_type=p.lr_scheduler,
        warmup_steps=p.warmup_ratio,  # transformers 5 reads a float < 1 as a share of the total steps
        weight_decay=p.weight_decay,
        num_train_epochs=p.epochs,
        max_steps=-1 if p.max_steps is None else p.max_steps,  # -1: the library's "use num_train_epochs"
        per_device_train_batch_size=p.per_device_batch_size,
        gradient_accumulation_steps=p.gradient_accumulation_steps,
        max_grad_norm=p.max_grad_norm,
        seed=p.seed,
        data_seed=p.seed,  # default None reuses `seed`; explicit, so the row order is visibly ours
        logging_steps=p.logging_steps,
        logging_first_step=True,  # default False; the first loss is the curve's "before"
        save_strategy="steps",
        save_steps=p.save_steps,
        save_total_limit=p.save_total_limit,
        save_only_model=False,  # the library default, stated: resume needs optimizer, scheduler and RNG state
        report_to="none",  # no integration found by scanning installed packages; DVCLive is added by `fit`
        bf16=cuda and torch.cuda.is_bf16_supported(),  # default False: mixed precision wherever the GPU has it
        use_cpu=not cuda,
        dataloader_num_workers=0,  # rows are read from memory; workers would only copy them between processes
        dataloader_pin_memory=cuda,  # default True warns on every CPU run
        remove_unused_columns=False,  # default True drops `seq_lengths`, which the collator needs
        include_num_input_tokens_seen="no",  # the library's count sums our 4-D mask; PackedTrainer counts (module doc)
        disable_tqdm=not sys.stderr.isatty(),  # a progress bar only on a terminal, as curation.progress does
        **extra,
    )


class PackedRows:
    """A map-style torch dataset over packed rows (input_ids, labels, seq_lengths) read with pyarrow; with `phase`,
    only the rows packed for that phase's kinds."""

    def __init__(self, paths: Sequence[Path], phase: Sequence[str] | None = None) -> None:
        filters = None if phase is None else pc.field("phase") == phase_label(phase)
        tables = [pq.read_table(p, columns=ROW_COLUMNS, filters=filters) for p in paths]
        self.table = pa.concat_tables(tables) if tables else pa.table({c: [] for c in ROW_COLUMNS})

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.table.slice(i, 1).to_pylist()[0]

    @property
    def tokens(self) -> int:
        return int(pc.sum(pc.list_value_length(self.table.column("input_ids"))).as_py() or 0)

    @property
    def longest(self) -> int:
        return int(pc.max(pc.list_value_length(self.table.column("input_ids"))).as_py() or 0)


@dataclass(frozen=True)
class PackedCollator:
    """Packed rows -> model inputs with the block-causal mask (training/attention.py), plus the real-token count."""

    pad_id: int
    seq_len: int
    attn_implementation: str
    dtype: str

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        from training.attention import collate, model_inputs

        batch = collate(rows, self.pad_id, self.seq_len)
        inputs = model_inputs(batch, self.attn_implementation, getattr(torch, self.dtype))
        inputs[NUM_TOKENS] = torch.tensor(sum(sum(row["seq_lengths"]) for row in rows), dtype=torch.long)
        return inputs


def _trainer_class() -> type:
    """`Trainer` that counts real tokens into its state (module docstring); built here to import transformers late."""
    from transformers import Trainer

    class PackedTrainer(Trainer):
        session_tokens = 0  # tokens trained on in this `train()` call, for tokens/s after a resume

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            n = int(self.accelerator.gather(inputs.pop(NUM_TOKENS).to(self.args.device)).sum())
            self.state.num_input_tokens_seen += n
            self.session_tokens += n
            return super().training_step(model, inputs, num_items_in_batch)

    return PackedTrainer


def rows_file(pack_dir: Path, group: str) -> Path:
    """The packed rows of `group`, or an error that says which stage makes them."""
    path = pack_dir / ROWS_FILE.format(group=group)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no packed rows of group {group!r}; add it to pack.groups, run pack")
    return path


def clear(folder: Path) -> None:
    """Empty `folder` but keep it: a `persist: true` DVC output must exist after the stage."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def checkpoint_step(checkpoint: str | None) -> int:
    """The optimizer step of a `checkpoint-N` folder; 0 for no checkpoint (a run from the start)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def last_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest `checkpoint-N` folder in `checkpoint_dir`, or None (the library's own search)."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None


def live_callbacks(live_dir: Path | None, resume: bool) -> list[Any]:
    """The DVCLive callback logging into `live_dir` (main process only; none without a folder)."""
    if live_dir is None or not is_main():
        return []
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    # dvcyaml=False: dvc.yaml declares the plots; save_dvc_exp=False: `dvc repro` runs are not experiments
    live = Live(dir=str(live_dir), resume=resume, report=None, save_dvc_exp=False, dvcyaml=False)
    return [DVCLiveCallback(live=live, log_model=False)]  # never copies a model into the DVCLive folder


def fit(
    model: PreTrainedModel,
    dataset: PackedRows,
    p: TrainParams,
    output_dir: Path,
    checkpoint_dir: Path,
    seq_len: int,
    pad_id: int,
    attn_implementation: str,
    dtype: str,
    live_dir: Path | None = None,
    callbacks: Sequence[Any] = (),
    append_live: bool = False,
) -> dict[str, Any]:
    """Train `model` on `dataset`, resuming from `checkpoint_dir`; save it to `output_dir`; return metrics.

    `train_loss` is the mean loss of this call's steps (after a resume: of the steps run since). `live_dir` is the
    DVCLive folder (main process only), continued rather than restarted with `append_live` (a later phase of one
    curve); `callbacks` are extra `TrainerCallback`s (tests stop a run with one).
    """
    from transformers import PrinterCallback

    resume = last_checkpoint(checkpoint_dir)
    trainer = _trainer_class()(
        model=model,
        args=build_training_args(p, checkpoint_dir),
        train_dataset=dataset,
        data_collator=PackedCollator(pad_id, seq_len, attn_implementation, dtype),
        callbacks=[*callbacks, *live_callbacks(live_dir, append_live or resume is not None)],
    )
    trainer.remove_callback(PrinterCallback)  # it print()s every log dict; DVCLive and the summary line replace it
    start_step = checkpoint_step(resume)
    if resume is not None:
        log.info("resuming from %s", resume)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started
    trainer.save_model(str(output_dir))  # gathers FSDP shards; writes on the main process only
    if is_main():
        (output_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle no consumer of the model reads
    trainer.accelerator.wait_for_everyone()  # the next group loads these weights on every process
    runtime = result.metrics.get("train_runtime") or wall
    return {
        "train_loss": float(result.training_loss),
        "steps": int(trainer.state.global_step),
        "resumed_from_step": start_step,
        "rows": len(dataset),
        "tokens": int(trainer.state.num_input_tokens_seen),
        "tokens_per_s": round(trainer.session_tokens / runtime, 1) if runtime else None,
        "wall_s": round(wall, 2),
        "loss_history": [[h["step"], h["loss"]] for h in trainer.state.log_history if "loss" in h],
    }


def resumable(
    chunks: Sequence[T],
    key: Callable[[T], str],
    work: Callable[[T], tuple[pa.Table, bool]],
    folder: Path,
    schema: pa.Schema,
    what: str,
) -> pa.Table:
    """The results of `work` over `chunks`, concatenated. A finished chunk is kept in `folder` as a Parquet file named
    by `key(chunk)`, a fingerprint of everything its result depends on, so a rerun after an interruption redoes only
    the missing chunks. `work` returns its result and whether it may be kept: a result with a transient failure in
    it (a judge server that timed out) is used by this run and redone by the next."""
    from curation.io import write_table
    from curation.progress import track

    folder.mkdir(parents=True, exist_ok=True)
    parts, reused = [], 0
    for chunk in track(chunks, what):
        path = folder / f"{key(chunk)}.parquet"
        if path.is_file():
            parts.append(pq.read_table(path))
            reused += 1
            continue
        result, keep = work(chunk)
        if keep:
            write_table(result, path, "zstd")
        parts.append(result)
    if reused:
        log.info("%s: %d of %d chunks reused from an interrupted run (%s)", what, reused, len(chunks), folder)
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _sample(table: pa.Table, n: int, seed: int) -> pa.Table:
    """The first `n` rows in hash(seed, id) order: a fixed sample whatever the input order (STYLE 14)."""
    keys = [xxhash.xxh3_64_intdigest(f"{seed}\x00{i}") for i in table.column(ID).to_pylist()]
    return table.take(sorted(range(table.num_rows), key=lambda k: (keys[k], k))[:n])


def held_out_sample(mixture_dir: Path, p: HeldOutParams) -> tuple[list[str], list[list[dict[str, str]]]]:
    """Held-out CPT texts and conversations (prompt + gold answer as the assistant turn) from the mixture's drops."""
    drops = pq.read_table(mixture_dir / DROPS_FILE, columns=[ID, "reason", TEXT, MESSAGES, ANSWER])
    cpt = _sample(drops.filter(pc.equal(drops.column("reason"), HELD_OUT_CPT)), p.cpt_texts, p.seed)
    items = _sample(drops.filter(pc.equal(drops.column("reason"), HELD_OUT_IT)), p.conversations, p.seed)
    conversations = [
        [*messages, {"role": "assistant", "content": answer}]
        for messages, answer in zip(items.column(MESSAGES).to_pylist(), items.column(ANSWER).to_pylist(), strict=True)
    ]
    return cpt.column(TEXT).to_pylist(), conversations


def _cpt_sequence(tokenizer: Any, text: str, max_length: int) -> tuple[list[int], list[int]]:
    """A held-out CPT text's first row-sized chunk, fully scored, exactly as pack tokenizes it."""
    ids = tokenize_cpt(tokenizer, text, max_length)[0]
    return ids, ids


def mean_token_loss(
    model: PreTrainedModel, sequences: Sequence[tuple[list[int], list[int]]], pad_id: int, batch_size: int
) -> float | None:
    """Loss per scored token over all `sequences` (ids, labels), in right-padded batches of similar length."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = [sequences[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (x, y) in enumerate(batch):
            ids[row, : len(x)], labels[row, : len(y)], mask[row, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        target = labels[:, 1:].to(device)  # the logit at t predicts the token at t + 1
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        total += float(loss)
        count += int((target != IGNORE).sum())
    return total / count if count else None


def held_out_loss(
    model: PreTrainedModel,
    tokenizer: Any,
    cpt_texts: Sequence[str],
    conversations: Sequence[list[dict[str, str]]],
    *,
    batch_size: int,
    max_length: int,
) -> dict[str, float | None]:
    """Mean token loss on held-out CPT text and on the assistant tokens of held-out conversations; no grad."""
    import torch

    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            cpt = [_cpt_sequence(tokenizer, t, max_length) for t in cpt_texts]
            it = [tuple(x[:max_length] for x in tokenize_chat(tokenizer, c)) for c in conversations]
            result = {
                "cpt": mean_token_loss(model, cpt, tokenizer.pad_token_id, batch_size),
                "it": mean_token_loss(model, it, tokenizer.pad_token_id, batch_size),
            }
    finally:
        model.train(training)
    return {k: None if v is None else round(v, 4) for k, v in result.items()}


def load_model(folder: Path, attn_implementation: str, dtype: str) -> PreTrainedModel:
    """A model a training stage saved (safetensors only, no remote code), with `use_cache` off for packed rows."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(folder),
        use_safetensors=True,
        trust_remote_code=False,
        attn_implementation=attn_implementation,
        dtype=getattr(torch, dtype),
    )
    model.config.use_cache = False  # see training/model.py: a cache lets packed documents see each other
    return model


def summary_line(stage: str, metrics: Mapping[str, Any]) -> str:
    """`base: 240 steps, 983,040 tokens at 2,150 tokens/s; held-out CPT 7.91 -> 5.12, IT 8.02 -> 4.40 (457 s)`."""
    before, after = metrics["held_out_before"], metrics["held_out_after"]
    train = metrics.get("train") or {}
    line = (
        f"{stage}: {train.get('steps', 0):,} steps, {train.get('tokens', 0):,} tokens at "
        f"{train.get('tokens_per_s') or 0:,.0f} tokens/s; held-out CPT {before['cpt']} -> {after['cpt']}, "
        f"IT {before['it']} -> {after['it']} ({metrics['wall_s']:.0f} s)"
    )
    logging.getLogger(stage).info(line)
    return line
