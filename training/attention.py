"""Packed rows into model batches in which no document sees another: the one place a packed batch is built.

A packed row (training/pack.py) concatenates whole documents; its `seq_lengths` say where each one ends. Three
things keep a document in a row equal to the same document trained alone, and `collate` does all three:

1. Attention. A block-diagonal causal mask: token i may attend to token j only if both are in the same document
   and j <= i. Padding attends to itself only, so no mask row is all False (an all-masked softmax row is NaN).
2. Positions. `position_ids` restart at 0 for each document, so RoPE sees the same positions as a lone run.
3. Labels. A causal LM loss shifts labels by one: the logit at the last token of document A is scored against
   the label of the first token of document B. `collate` sets each document's first label to -100, as
   transformers' `DataCollatorWithFlattening` does (`[separator_id] + labels[1:]`). Nothing is lost: a document
   run alone never predicts its own first token either.

The non-obvious decision: on CPU the isolation is the explicit 4-D mask (1), not transformers 5's implicit
packed-sequence detection from (2). That detection works only when no 2-D `attention_mask` is passed and no KV cache
exists; a model whose config keeps the default `use_cache=True`, or a trainer that adds an all-ones attention mask,
silently lets documents attend across boundaries (tests/training/test_attention.py measures a logit change of
about 0.5 for both). The explicit mask holds whatever the cache setting. Its cost: an L x L mask per row (1 MiB
as bool at L = 1024, 4 MiB as the float mask eager needs), and sdpa cannot take its mask-free causal fast path.
`flash_attention_2` and `flex_attention` take no dense mask and get position_ids alone (`model_inputs`); they rely
on `use_cache=False`, which training/model.py always sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from training.chat import IGNORE


if TYPE_CHECKING:
    import torch


MASK_FREE = ("flash_attention_2", "flex_attention")  # attention implementations that read packing from position_ids


def _check(seq_lengths: Sequence[int], length: int) -> None:
    if any(n <= 0 for n in seq_lengths) or sum(seq_lengths) > length:
        raise ValueError(f"seq_lengths {list(seq_lengths)} must be positive and sum to at most {length}")


def document_ids(seq_lengths: Sequence[int], length: int) -> torch.Tensor:
    """Index of the document each of `length` positions belongs to, -1 for padding."""
    import torch

    _check(seq_lengths, length)
    ids = torch.full((length,), -1, dtype=torch.long)
    n = sum(seq_lengths)
    ids[:n] = torch.repeat_interleave(torch.arange(len(seq_lengths)), torch.tensor(seq_lengths, dtype=torch.long))
    return ids


def position_ids(seq_lengths: Sequence[int], length: int) -> torch.Tensor:
    """Positions that restart at 0 for each document; padding continues the last document's count."""
    import torch

    _check(seq_lengths, length)
    starts = torch.tensor([0, *seq_lengths], dtype=torch.long).cumsum(0)  # starts[k]: first token of document k
    doc = document_ids(seq_lengths, length)
    doc[doc < 0] = max(len(seq_lengths) - 1, 0)  # padding counts on from the last start: it forms no new document
    return torch.arange(length) - starts[doc]


def block_causal_mask(seq_lengths_batch: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """[batch, 1, L, L] bool, True = may attend: same document and not in the future; padding sees only itself."""
    import torch

    doc = torch.stack([document_ids(s, length) for s in seq_lengths_batch])  # [B, L]
    same = doc[:, :, None] == doc[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    real = (doc >= 0)[:, :, None]
    mask = (same & causal & real) | torch.eye(length, dtype=torch.bool)
    return mask[:, None]


def boundary_labels(labels: Sequence[int], seq_lengths: Sequence[int]) -> list[int]:
    """`labels` with each document's first label set to IGNORE, so no document is trained on its predecessor."""
    out = list(labels)
    start = 0
    for n in seq_lengths:
        out[start] = IGNORE
        start += n
    return out


def collate(rows: Sequence[Mapping[str, Any]], pad_id: int, seq_len: int) -> dict[str, torch.Tensor]:
    """Packed rows (`input_ids`, `labels`, `seq_lengths`) -> padded `input_ids`, `labels`, `position_ids`, 4-D mask."""
    import torch

    input_ids = torch.full((len(rows), seq_len), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), seq_len), IGNORE, dtype=torch.long)
    for i, row in enumerate(rows):
        n, lengths = len(row["input_ids"]), row["seq_lengths"]
        if n != sum(lengths) or n != len(row["labels"]) or n > seq_len:
            raise ValueError(
                f"packed row {i}: {n} input_ids, {len(row['labels'])} labels and seq_lengths summing to "
                f"{sum(lengths)} must agree and fit seq_len={seq_len}; re-run the pack stage with this pack.seq_len"
            )
        input_ids[i, :n] = torch.as_tensor(row["input_ids"], dtype=torch.long)
        labels[i, :n] = torch.as_tensor(boundary_labels(row["labels"], lengths), dtype=torch.long)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": torch.stack([position_ids(row["seq_lengths"], seq_len) for row in rows]),
        "attention_mask": block_causal_mask([row["seq_lengths"] for row in rows], seq_len),
    }


def model_inputs(batch: Mapping[str, torch.Tensor], attn_implementation: str, dtype: torch.dtype) -> dict[str, Any]:
    """The forward keyword arguments for a collated batch under `attn_implementation` (labels included)."""
    import torch

    inputs = {k: batch[k] for k in ("input_ids", "labels", "position_ids")}
    mask = batch["attention_mask"]
    if attn_implementation in MASK_FREE:
        return inputs  # packing read from position_ids; needs use_cache=False (training/model.py)
    if attn_implementation == "eager":
        # eager adds the mask to the scores: a bool mask would add 0/1 and mask nothing (measured in the tests)
        mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
    return {**inputs, "attention_mask": mask}
