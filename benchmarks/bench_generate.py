"""FinEval runner speed: generated tokens/s of the runner's batching (as `evaluation.generate.generate` does it:
prompts sorted by length, left-padded, `--batch-size` per forward) against a one-prompt-at-a-time loop over the same
prompts, model and settings.

The model is the pipeline's reasoning checkpoint (`data/joint/reasoning`, run `dvc repro joint` first); the prompts
are the held-out FinTrain-mini items of the `fintrain_*` tasks. Greedy decoding with no stop token (`min_new_tokens`
= `max_new_tokens`), so both sides generate exactly the same number of tokens and the ratio is pure throughput
(the runner itself stops at the stop tokens, which would make the two sides generate different amounts).

    python -m benchmarks.bench_generate [--items 64] [--max-new-tokens 64] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from benchmarks.common import write_result
from curation.config import load_params
from evaluation.evaluate import EvaluateParams
from evaluation.generate import GenerateParams, load
from evaluation.registry import items, load_tasks


def tokens_per_s(model: Any, tokenizer: Any, prompts: list[str], batch_size: int, new_tokens: int) -> float:
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        batch = [prompts[i] for i in order[start : start + batch_size]]
        inputs = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=None)  # fmt: skip
    return len(prompts) * new_tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    p = load_params("evaluate", EvaluateParams)
    model, tokenizer = load(p.models["reasoning"].path, GenerateParams(args.batch_size, "auto", "auto"))
    conversations = [i.messages for spec in load_tasks(p.tasks) for i in items(spec, p.paths)][: args.items]
    prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    tokens_per_s(model, tokenizer, prompts[:4], 4, 4)  # warm-up
    batched = tokens_per_s(model, tokenizer, prompts, args.batch_size, args.max_new_tokens)
    single = tokens_per_s(model, tokenizer, prompts, 1, args.max_new_tokens)
    print(f"| runner | generated tokens/s |\n|---|---|\n| batched ({args.batch_size}) | {batched:,.0f} |\n"
          f"| one prompt at a time | {single:,.0f} |\n| speed-up | {batched / single:.1f}x |")  # fmt: skip
    write_result("generate", {"items": len(prompts), "max_new_tokens": args.max_new_tokens,
                              "batch_size": args.batch_size, "device": str(model.device),
                              "batched_tokens_per_s": round(batched, 1), "single_tokens_per_s": round(single, 1),
                              "speedup": round(batched / single, 2)})  # fmt: skip


if __name__ == "__main__":
    main()
