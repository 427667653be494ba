"""Packing and training throughput: our packed rows with isolated attention vs trl's `SFTTrainer` on the same data.

The data is the default mixture (`data/mixture`, tokenized with `data/tokenizer` as the pack stage does it; run
`dvc repro pack` first): every CPT chunk and conversation, instruction tokens masked. Every contender trains
`--steps` optimizer steps from the same seeded weights, `batch` rows (or examples) per step, base.train's optimizer:

- `ours`: what the base and joint stages run (`training.trainer.fit`): trl's best-fit-decreasing rows of `seq_len`
  tokens (`training.pack.pack`), isolated by the block-causal 4-D mask under sdpa (training/attention.py).
- `trl_padding`: `SFTTrainer`'s default, no packing: one example per sequence, padded to the longest in its batch
  by trl's `DataCollatorForLanguageModeling`. What a user gets who does not pack.
- `trl_bfd`: `SFTTrainer(packing=True)`: trl's own BFD packing, padding-free (one flattened row, position_ids).
- CUDA only, `ours` with one change each: `ours_flex` (flex_attention, isolation from position_ids, no dense mask),
  `ours+compile` (`model.compile()`), `ours+liger` (liger-kernel's fused linear cross-entropy, RMSNorm, SwiGLU and
  RoPE kernels). A contender whose library is missing is skipped with a message. liger patches transformers' Llama
  module globally, so the liger contenders run last.

Per contender: the non-pad share of the batch slots it fills (over one epoch of its own data loader), real tokens per
second after `warmup` steps, and model FLOPs utilization: useful FLOPs per real token x tokens/s over the measured
dense matmul peak of the device (bf16 on CUDA, float32 on CPU). Useful FLOPs of a document of n tokens:
6 N n + 6 layers hidden n^2, with N the weights used in matmuls (the output head too, not the embedding lookup) and
the second term causal attention (QK^T and AV, 2 hidden n^2/2 FLOPs each forward, x3 with the backward). Padding and
cross-document scores that a kernel computes anyway are not counted.

    python -m benchmarks.bench_training                       # CPU: the params.yaml model, seq 1024
    python -m benchmarks.bench_training --preset gpu          # CUDA: a 0.6B Llama from config, bf16, seq 2048

`--preset gpu` without CUDA prints that it is skipped and exits 0; benchmarks/gpu.sh runs it on a lent GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from curation.config import load_params
from curation.io import read_records
from training.base import BaseParams
from training.chat import TRAINED_KINDS, phase_label
from training.model import ModelParams, build_model, count_parameters
from training.pack import PackParams, pack, tokenize
from training.trainer import TrainParams, build_training_args, fit


ROOT = Path(__file__).resolve().parents[1]


# 24 blocks of 25.2M weights + the 8k-vocab head = 0.62B; head size 128, grouped-query attention 12/4
GPU_MODEL = {
    "hidden_size": 1536,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 12,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
}


@dataclasses.dataclass(frozen=True)
class Preset:
    model: dict[str, Any]  # overrides of params.yaml `model`
    seq_len: int | None  # None: pack.seq_len
    batch: int
    dtype: str
    steps: int
    warmup: int


PRESETS = {
    "cpu": Preset({}, None, batch=4, dtype="float32", steps=12, warmup=2),
    "gpu": Preset(GPU_MODEL, seq_len=2048, batch=8, dtype="bfloat16", steps=40, warmup=10),
}


@dataclasses.dataclass(frozen=True)
class Contender:
    trainer: str  # "ours" (training.trainer.fit) or "trl" (SFTTrainer)
    attn: str = "sdpa"
    packing: bool = False  # trl only
    compile: bool = False
    liger: bool = False
    cuda_only: bool = False

    def missing(self, device: str) -> str | None:
        """Why this contender cannot run here, or None."""
        if self.cuda_only and device != "cuda":
            return "CUDA only"
        if self.liger and find_spec("liger_kernel") is None:
            return "liger-kernel is not installed"
        return None


CONTENDERS = {
    "ours": Contender("ours"),
    "trl_padding": Contender("trl"),
    "trl_bfd": Contender("trl", packing=True),
    "ours_flex": Contender("ours", attn="flex_attention", cuda_only=True),
    "ours+compile": Contender("ours", compile=True, cuda_only=True),
    "ours+liger": Contender("ours", liger=True, cuda_only=True),  # liger last: it patches transformers globally
    "ours+liger+compile": Contender("ours", liger=True, compile=True, cuda_only=True),
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int, repeats: int = 10) -> float:
    """Measured dense matmul FLOP/s of `device` at `dtype`: the denominator of MFU."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b  # warm-up
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def matmul_weights(model: Any) -> int:
    """Weights multiplied per token: all but the input embedding; a tied output head still counts as a matmul."""
    n = count_parameters(model, exclude_embeddings=True)
    return n + (model.get_input_embeddings().weight.numel() if model.config.tie_word_embeddings else 0)


def train_flops(weights: int, layers: int, hidden: int, doc_lengths: Sequence[int]) -> float:
    """Useful training FLOPs for causal documents of `doc_lengths` tokens (module docstring)."""
    n = np.asarray(doc_lengths, dtype=np.float64)
    return float(6 * weights * n.sum() + 6 * layers * hidden * (n**2).sum())


class StepTimer:
    """Records (time, real tokens seen) at every optimizer step's end; a `TrainerCallback` by duck typing."""

    def __init__(self, device: str) -> None:
        self.device, self.marks = device, []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None  # the other events of the callback protocol
        raise AttributeError(name)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        sync(self.device)
        self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

    def tokens_per_s(self, warmup: int) -> float:
        if len(self.marks) <= warmup:
            raise SystemExit(f"{len(self.marks)} steps ran; --steps must exceed --warmup ({warmup})")
        (t0, n0), (t1, n1) = self.marks[warmup - 1] if warmup else (self.marks[0][0], 0), self.marks[-1]
        return (n1 - n0) / (t1 - t0)


def slot_fill(batches: Any) -> float:
    """Real tokens over batch slots of an epoch of a data loader: padded batches carry `attention_mask`; a
    padding-free batch (position_ids, no mask) has no slot left empty; ours counts the mask's real rows."""
    real = slots = 0
    for batch in batches:
        slots += batch["input_ids"].numel()
        if "num_tokens" in batch:
            real += int(batch["num_tokens"])
        elif "attention_mask" in batch:
            real += int(batch["attention_mask"].sum())
        else:
            real += batch["input_ids"].numel()
    return real / slots


def run_ours(c: Contender, model: Any, rows: pa.Table, p: TrainParams, ctx: dict[str, Any], folder: Path) -> float:
    """Train with the stages' own `fit`; return the slot fill of its batches."""
    from training.trainer import PackedCollator, PackedRows

    path = folder / "rows.parquet"
    pq.write_table(rows, path)
    fit(model, PackedRows([path]), p, folder / "model", folder / "checkpoints", ctx["seq_len"], ctx["pad_id"], c.attn,
        ctx["dtype"], callbacks=[ctx["timer"]])  # fmt: skip
    collate = PackedCollator(ctx["pad_id"], ctx["seq_len"], c.attn, ctx["dtype"])
    batch = p.per_device_batch_size
    return slot_fill(collate(rows.slice(i, batch).to_pylist()) for i in range(0, rows.num_rows, batch))


def run_trl(
    c: Contender, model: Any, seqs: dict[str, list], p: TrainParams, ctx: dict[str, Any], folder: Path
) -> float:
    """Train with `SFTTrainer` (same optimizer settings, trl's defaults otherwise); return its batches' slot fill."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    args = build_training_args(p, folder, SFTConfig, max_length=ctx["seq_len"], packing=c.packing)
    args.save_strategy = "no"  # the stages' arguments checkpoint; a timed run need not
    args.include_num_input_tokens_seen = "non_padding"  # trl's batches carry an attention mask or no padding
    data = Dataset.from_dict({"input_ids": seqs["input_ids"], "labels": seqs["labels"]})
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=ctx["tokenizer"],
                         callbacks=[ctx["timer"]])  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the table replaces it
    trainer.train()
    return slot_fill(trainer.get_train_dataloader())


def main(argv: Sequence[str] | None = None) -> None:
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--steps", type=int, help="optimizer steps per contender (default: the preset's)")
    parser.add_argument("--warmup", type=int, help="first steps left out of tokens/s (default: the preset's)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/training_<preset>.json")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    steps, warmup = args.steps or preset.steps, preset.warmup if args.warmup is None else args.warmup
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.preset == "gpu" and device != "cuda":
        print("bench_training --preset gpu: skipped, no CUDA device here (benchmarks/gpu.sh runs it on a lent GPU)")
        return

    params_file = ROOT / "params.yaml"
    seq_len = preset.seq_len or load_params("pack", PackParams, params_file).seq_len
    model_p = dataclasses.replace(
        load_params("model", ModelParams, params_file), **preset.model, max_position_embeddings=seq_len,
        dtype="float32",  # master weights; bf16 compute comes from the trainer's autocast on CUDA
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(str(ROOT / "data/tokenizer"))
    seqs, _ = tokenize(read_records([ROOT / "data/mixture"]), tokenizer, seq_len)
    rows = pack(seqs, seq_len, phase_label(TRAINED_KINDS))  # both kinds in one packing, as for the base group
    lengths = [len(s) for s in seqs["input_ids"]]
    if sorted(n for row in rows.column("seq_lengths").to_pylist() for n in row) != sorted(lengths):
        raise AssertionError("packing lost or split a sequence")
    p = dataclasses.replace(  # base.train's optimizer, a fixed step count, no checkpoint while timing
        load_params("base", BaseParams, params_file).train, max_steps=steps, per_device_batch_size=preset.batch,
        save_steps=10**9,
    )  # fmt: skip

    def model(attn: str) -> Any:
        return build_model(dataclasses.replace(model_p, attn_implementation=attn), len(tokenizer),
                           tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)  # fmt: skip

    probe = model("sdpa")
    weights, layers, hidden = matmul_weights(probe), probe.config.num_hidden_layers, probe.config.hidden_size
    del probe
    flops_per_token = train_flops(weights, layers, hidden, lengths) / sum(lengths)
    compute_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    peak = matmul_peak(device, compute_dtype, 8192 if device == "cuda" else 2048)

    results: dict[str, dict[str, Any]] = {}
    for name in args.contenders:
        c = CONTENDERS[name]
        if why := c.missing(device):
            print(f"{name}: skipped ({why})")
            continue
        m = model(c.attn)
        if c.liger:
            from liger_kernel.transformers import apply_liger_kernel_to_llama

            apply_liger_kernel_to_llama(model=m)
        if c.compile:
            m.compile()
        timer = StepTimer(device)
        ctx = {"seq_len": seq_len, "pad_id": tokenizer.pad_token_id, "dtype": "float32", "timer": timer,
               "tokenizer": tokenizer}  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            run = run_ours if c.trainer == "ours" else run_trl
            fill = run(c, m, rows if c.trainer == "ours" else seqs, p, ctx, Path(folder))
        rate = timer.tokens_per_s(warmup)
        results[name] = {"non_pad_fraction": round(fill, 4), "tokens_per_s": round(rate, 1),
                         "mfu": round(rate * flops_per_token / peak, 4)}  # fmt: skip
        del m
        if device == "cuda":
            torch.cuda.empty_cache()

    title = (f"{device}: {weights / 1e6:.1f}M matmul weights, seq {seq_len}, batch {preset.batch}, {steps} steps "
             f"({warmup} warm-up), matmul peak {peak / 1e12:.2f} TFLOP/s")  # fmt: skip
    table = Table(title=title)
    for column in ("contender", "non-pad tokens", "tokens/s", "MFU", "x trl_padding"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    ref = results.get("trl_padding", {}).get("tokens_per_s")
    for name, r in results.items():
        ratio = f"{r['tokens_per_s'] / ref:.2f}" if ref else "-"
        table.add_row(name, f"{r['non_pad_fraction']:.1%}", f"{r['tokens_per_s']:,.0f}", f"{r['mfu']:.2%}", ratio)
    Console(width=140).print(table)
    out = args.output or ROOT / f"benchmarks/results/training_{args.preset}.json"
    write_result(f"training_{args.preset}", {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "model": {"matmul_weights": weights, "layers": layers, "hidden": hidden, "vocab": len(tokenizer),
                  "compute_dtype": str(compute_dtype).removeprefix("torch."), **preset.model},
        "data": {"sequences": len(lengths), "tokens": sum(lengths), "packed_rows": rows.num_rows, "seq_len": seq_len,
                 "batch": preset.batch},
        "steps": steps, "warmup": warmup, "matmul_peak_flops": round(peak),
        "useful_flops_per_token": round(flops_per_token),
        "results": results,
    }, out)  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
