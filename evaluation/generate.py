"""Batched generation from an HF-format checkpoint folder: the evaluation runner and on-policy sampling share it.

It needs no training code: a checkpoint carries its tokenizer, chat template and generation config (the stop
tokens). Prompts are sorted by length so a batch wastes little padding, padded on the left, and the outputs come
back in the caller's order. Greedy decoding is deterministic; sampling is seeded per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import xxhash
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from curation.config import params
from curation.progress import track


@params
class GenerateParams:
    batch_size: int  # prompts per forward pass
    device: Literal["auto", "cpu", "cuda"]  # auto: CUDA when present
    dtype: Literal["auto", "float32", "bfloat16"]  # auto: bfloat16 on CUDA, float32 on CPU


def checkpoint_digest(path: str | Path) -> str:
    """A hash of a checkpoint folder's bytes (names and contents): what outputs cached from it depend on."""
    h = xxhash.xxh3_128()
    root = Path(path)
    files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else []
    for f in files:
        h.update(str(f.relative_to(root)).encode())
        with f.open("rb") as stream:
            while chunk := stream.read(1 << 24):
                h.update(chunk)
    if not files:
        h.update(str(path).encode())  # a Hub id: its revision is whatever the id resolves to
    return h.hexdigest()


def load(path: str | Path, p: GenerateParams) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A checkpoint folder (or Hub id) in eval mode on the chosen device, with a left-padding tokenizer."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if p.device == "auto" else p.device
    dtype = {"auto": torch.bfloat16 if device == "cuda" else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16}[p.dtype]  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # a user-named model: weights from safetensors only, and no code of its own runs
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    model = model.to(device).eval()
    return model, tokenizer


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict[str, str]]],
    max_new_tokens: int,
    batch_size: int,
    num_samples: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
    description: str = "generate",
) -> list[list[str]]:
    """`num_samples` completions of each conversation's next assistant turn (greedy when temperature is 0)."""
    prompts = [
        tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in conversations
    ]
    lengths = [len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (-lengths[i], i))
    sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    stops = model.generation_config.eos_token_id
    stops = {stops} if isinstance(stops, int) else set(stops or [tokenizer.eos_token_id])
    outputs: list[list[str]] = [[] for _ in prompts]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    torch.manual_seed(seed)
    for batch in track(batches, description):
        inputs = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            tokens = model.generate(
                **inputs.to(model.device),
                max_new_tokens=max_new_tokens,
                num_return_sequences=num_samples,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        texts = [_decode(tokenizer, seq.tolist(), stops) for seq in tokens[:, inputs.input_ids.shape[1] :]]
        for k, i in enumerate(batch):
            outputs[i] = texts[k * num_samples : (k + 1) * num_samples]
    return outputs


def answer_loss(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict[str, str]]],
    answers: Sequence[str],
    batch_size: int,
    description: str = "answer loss",
) -> list[float]:
    """Mean negative log-likelihood per token of each answer as the conversation's next assistant turn.

    lm-eval's loglikelihood view of a task: it moves smoothly while a small model's greedy outputs still parse as
    nothing, and it needs no extraction. Rows are right-padded, so positions count from 0 as in training.
    """
    pairs = []
    for conversation, answer in zip(conversations, answers, strict=True):
        prompt = tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
        context = tokenizer(prompt, add_special_tokens=False).input_ids
        pairs.append((context, tokenizer(answer, add_special_tokens=False).input_ids))
    order = sorted(range(len(pairs)), key=lambda i: (-sum(map(len, pairs[i])), i))
    losses = [0.0] * len(pairs)
    for batch in track([order[i : i + batch_size] for i in range(0, len(order), batch_size)], description):
        width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        answer = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, i in enumerate(batch):
            context, tokens = pairs[i]
            ids[row, : len(context) + len(tokens)] = torch.tensor(context + tokens)
            mask[row, : len(context) + len(tokens)] = 1
            answer[row, len(context) : len(context) + len(tokens)] = True
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(model.device),
                                                reduction="none")  # fmt: skip
        picked = answer[:, 1:].to(model.device)
        per_row = (nll * picked).sum(1) / picked.sum(1).clamp(min=1)
        for row, i in enumerate(batch):
            losses[i] = round(float(per_row[row]), 6)
    return losses


def _decode(tokenizer: PreTrainedTokenizerBase, ids: list[int], stops: set[int]) -> str:
    """The text before the first stop token (which need not be a special token, so skipping specials is not enough)."""
    end = next((k for k, t in enumerate(ids) if t in stops), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True).strip()
