"""Packed-sequence isolation, proved: a document inside a packed row gets the logits, loss and gradients it gets alone.

Every equivalence is paired with a case that must break it (no mask, a KV cache, a 2-D attention mask, a bool mask
under eager, unmasked boundary labels), so a test that cannot fail would show up as a failing leak assertion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.masking_utils import find_packed_sequence_indices

from tests.training.conftest import PAD, TINY, VOCAB, tiny
from training.attention import (
    IGNORE,
    block_causal_mask,
    boundary_labels,
    collate,
    document_ids,
    model_inputs,
    position_ids,
)
from training.chat import tokenize_cpt
from training.model import build_model
from training.pack import pack


SEQ_LEN = 48
LENGTHS = [[7, 13, 5, 9], [20, 1, 11]]  # both rows padded; the second holds a one-token document
EXACT = 1e-5  # float32 tolerance for "the same logits"
Row = dict[str, Any]  # a packed row: input_ids, labels, seq_lengths
LEAK = 0.05  # a document that sees another moves its logits by far more than this (about 0.5 measured)


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    """Packed rows of random documents; CPT-like labels (= tokens) in row 0, chat-like (prompt ignored) in row 1."""
    g = torch.Generator().manual_seed(0)
    out = []
    for r, lengths in enumerate(LENGTHS):
        ids, labels = [], []
        for n in lengths:
            doc = torch.randint(3, VOCAB, (n,), generator=g).tolist()
            ids += doc
            labels += doc if r == 0 else [IGNORE] * (n // 3) + doc[n // 3 :]
        out.append({"input_ids": ids, "labels": labels, "seq_lengths": lengths})
    return out


def documents(row: Row) -> list[tuple[int, list[int], list[int]]]:
    """(start, tokens, labels) of each document of a packed row."""
    out, start = [], 0
    for n in row["seq_lengths"]:
        out.append((start, row["input_ids"][start : start + n], row["labels"][start : start + n]))
        start += n
    return out


@torch.no_grad()
def leaks(model: Any, rows: Sequence[Row], logits: torch.Tensor) -> list[float]:
    """Per document, the largest |packed logit - logit of the document run alone|."""
    out = []
    for r, row in enumerate(rows):
        for start, ids, _ in documents(row):
            alone = model(torch.tensor([ids])).logits[0]
            out.append((logits[r, start : start + len(ids)] - alone).abs().max().item())
    return out


def firsts(rows: Sequence[Row]) -> list[bool]:
    """Per document (in `leaks` order), whether it opens its row: nothing precedes it, so nothing can leak into it."""
    return [k == 0 for row in rows for k in range(len(row["seq_lengths"]))]


# (i) the 4-D block-diagonal mask isolates documents, with or without a KV cache


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("use_cache", [False, True])
def test_block_mask_gives_each_document_its_lone_logits(rows: list[Row], attn: str, use_cache: bool) -> None:
    model = tiny(attn, use_cache)
    inputs = model_inputs(collate(rows, PAD, SEQ_LEN), attn, torch.float32)
    inputs.pop("labels")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert torch.isfinite(logits).all()  # padding rows of the mask are not empty, so no NaN anywhere
    assert max(leaks(model, rows, logits)) < EXACT


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_block_mask_alone_isolates_even_with_running_positions(rows: list[Row], attn: str) -> None:
    """RoPE is relative, so the mask without reset positions also isolates (to rounding); collate sends both."""
    model = tiny(attn)
    inputs = model_inputs(collate(rows, PAD, SEQ_LEN), attn, torch.float32)
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    assert max(leaks(model, rows, logits)) < EXACT


def test_a_bool_mask_under_eager_masks_nothing(rows: list[Row]) -> None:
    """Why model_inputs turns the mask into 0 / -inf scores for eager: eager adds the mask to the scores."""
    model = tiny("eager")
    batch = collate(rows, PAD, SEQ_LEN)
    with torch.no_grad():
        logits = model(batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"])
    assert min(leaks(model, rows, logits.logits)) > LEAK  # even the first documents see padding and the future


# (ii) position_ids alone isolate only without a cache and without a 2-D attention mask (transformers 5 behaviour)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_position_ids_alone_isolate_without_cache(rows: list[Row], attn: str) -> None:
    model = tiny(attn, use_cache=False)
    batch = collate(rows, PAD, SEQ_LEN)
    with torch.no_grad():
        logits = model(batch["input_ids"], position_ids=batch["position_ids"]).logits
    assert max(leaks(model, rows, logits)) < EXACT


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("breaker", ["config use_cache=True", "all-ones 2-D attention_mask"])
def test_position_ids_alone_leak_with_cache_or_2d_mask(rows: list[Row], attn: str, breaker: str) -> None:
    model = tiny(attn, use_cache=breaker.startswith("config"))
    batch = collate(rows, PAD, SEQ_LEN)
    extra = {"attention_mask": torch.ones(len(rows), SEQ_LEN, dtype=torch.long)} if "2-D" in breaker else {}
    with torch.no_grad():
        logits = model(batch["input_ids"], position_ids=batch["position_ids"], **extra).logits
    for first, leak in zip(firsts(rows), leaks(model, rows, logits), strict=True):
        assert leak < EXACT if first else leak > LEAK


@pytest.mark.slow  # flex_attention compiles its kernel on CPU: up to a minute cold
def test_flex_attention_isolates_with_position_ids_alone(rows: list[Row]) -> None:
    model = tiny("flex_attention")
    inputs = model_inputs(collate(rows, PAD, SEQ_LEN), "flex_attention", torch.float32)
    assert "attention_mask" not in inputs
    inputs.pop("labels")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert max(leaks(model, rows, logits)) < EXACT


# (iii) plain causal attention over a packed row must leak, or the tests above prove nothing


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_plain_causal_attention_leaks_into_later_documents(rows: list[Row], attn: str) -> None:
    model = tiny(attn)
    with torch.no_grad():
        logits = model(collate(rows, PAD, SEQ_LEN)["input_ids"]).logits
    for first, leak in zip(firsts(rows), leaks(model, rows, logits), strict=True):
        assert leak < EXACT if first else leak > LEAK


# (iv) loss and gradients of a packed batch = token-weighted mean over documents run alone


def test_packed_loss_and_gradients_equal_the_documents_run_alone(rows: list[Row]) -> None:
    model = tiny()
    batch = collate(rows, PAD, SEQ_LEN)
    packed = model(**model_inputs(batch, "sdpa", torch.float32)).loss
    packed_grads = torch.autograd.grad(packed, list(model.parameters()))

    total, weighted = 0, torch.zeros(())
    for row in rows:
        for _, ids, labels in documents(row):
            n = sum(label != IGNORE for label in labels[1:])  # tokens a lone run predicts: never its first one
            if n:
                weighted = weighted + n * model(torch.tensor([ids]), labels=torch.tensor([labels])).loss
                total += n
    expected = weighted / total
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))
    assert total == (batch["labels"][:, 1:] != IGNORE).sum().item()
    assert abs(packed.item() - expected.item()) < 1e-6
    for a, b in zip(packed_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)

    # without the boundary labels, a document's last token is trained to predict the next document's first
    raw = batch["labels"].clone()
    for r, row in enumerate(rows):
        raw[r, : len(row["labels"])] = torch.tensor(row["labels"])
    with torch.no_grad():
        unguarded = model(**{**model_inputs(batch, "sdpa", torch.float32), "labels": raw}).loss
    crossings = sum(labels[0] != IGNORE for row in rows for start, _, labels in documents(row) if start > 0)
    assert crossings >= 3 and (raw[:, 1:] != IGNORE).sum().item() == total + crossings
    assert abs(unguarded.item() - packed.item()) > 1e-3


def test_trl_packed_rows_of_real_text_keep_their_lone_logits(tokenizer: Any) -> None:
    """End to end: tokenize, pack with trl's BFD (training/pack.py), collate, and compare with lone runs."""
    texts = [" ".join(f"Revenue of unit {i} rose {k}%." for k in range(i % 5 + 1)) for i in range(12)]
    seqs: dict[str, list] = {"input_ids": [], "labels": [], "name": [], "capability": []}
    for i, text in enumerate(texts):
        for chunk in tokenize_cpt(tokenizer, text, 64):
            seqs["input_ids"].append(chunk)
            seqs["labels"].append(chunk)
            seqs["name"].append(f"doc{i}")
            seqs["capability"].append("concepts")
    rows = pack(seqs, 64, "cpt").to_pylist()
    assert any(len(row["seq_lengths"]) > 1 for row in rows)
    p = dataclasses.replace(TINY, attn_implementation="sdpa")
    model = build_model(p, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    batch = collate(rows, tokenizer.pad_token_id, 64)
    with torch.no_grad():
        logits = model(**model_inputs(batch, "sdpa", torch.float32)).logits
    assert max(leaks(model.eval(), rows, logits)) < EXACT


# (v) the helpers, on hand-made rows (exact tensors) and on random ones (properties)


def test_helpers_on_a_hand_made_row() -> None:
    assert document_ids([2, 3], 6).tolist() == [0, 0, 1, 1, 1, -1]
    assert position_ids([2, 3], 6).tolist() == [0, 1, 0, 1, 2, 3]  # padding counts on; it forms no new document
    assert position_ids([], 3).tolist() == [0, 1, 2] and document_ids([], 3).tolist() == [-1, -1, -1]
    expected = [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]
    mask = block_causal_mask([[2, 3], [6]], 6)
    assert mask.shape == (2, 1, 6, 6) and mask.dtype == torch.bool
    assert mask[0, 0].int().tolist() == expected
    assert torch.equal(mask[1, 0], torch.ones(6, 6, dtype=torch.bool).tril())
    assert torch.equal(block_causal_mask([[]], 3)[0, 0], torch.eye(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="sum to at most 4"):
        position_ids([3, 2], 4)
    with pytest.raises(ValueError, match="positive"):
        document_ids([2, 0], 4)


def test_collate_on_a_hand_made_row() -> None:
    row = {"input_ids": [1, 5, 2, 1, 6, 7], "labels": [1, 5, 2, IGNORE, IGNORE, 7], "seq_lengths": [3, 3]}
    batch = collate([row], pad_id=0, seq_len=8)
    assert batch["input_ids"].tolist() == [[1, 5, 2, 1, 6, 7, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 5, 2, IGNORE, IGNORE, 7, IGNORE, IGNORE]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4]]
    assert torch.equal(batch["attention_mask"], block_causal_mask([[3, 3]], 8))
    assert boundary_labels([4, 5, 6], [1, 2]) == [IGNORE, IGNORE, 6]
    eager = model_inputs(batch, "eager", torch.float32)["attention_mask"]
    assert eager.dtype == torch.float32 and torch.equal(eager == 0, batch["attention_mask"])
    assert set(model_inputs(batch, "flash_attention_2", torch.bfloat16)) == {"input_ids", "labels", "position_ids"}
    with pytest.raises(ValueError, match="packed row 0"):
        collate([{**row, "seq_lengths": [3, 2]}], pad_id=0, seq_len=8)
    with pytest.raises(ValueError, match="packed row 0"):
        collate([row], pad_id=0, seq_len=5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=9), max_size=8), st.integers(min_value=0, max_value=5))
def test_every_token_attends_to_exactly_its_own_past(seq_lengths: list[int], padding: int) -> None:
    length = sum(seq_lengths) + padding
    if length == 0:
        return
    doc, pos = document_ids(seq_lengths, length), position_ids(seq_lengths, length)
    mask = block_causal_mask([seq_lengths], length)[0, 0]
    starts = [sum(seq_lengths[:k]) for k in range(len(seq_lengths))]
    for k, (start, n) in enumerate(zip(starts, seq_lengths, strict=True)):
        assert pos[start : start + n].tolist() == list(range(n))  # positions restart at every boundary
        assert (doc[start : start + n] == k).all()
    for i in range(length):
        seen = mask[i].nonzero().flatten().tolist()
        if doc[i] < 0:
            assert seen == [i]  # padding sees itself only: no empty softmax row
        else:
            assert seen == list(range(i - int(pos[i]), i + 1))  # its document's start through itself
            assert all(doc[j] == doc[i] for j in seen)
    # transformers' own packed-sequence detection reads our position_ids as the same documents
    found = find_packed_sequence_indices(pos[None])
    segments = torch.zeros(length, dtype=torch.long) if found is None else found[0]
    real = doc >= 0
    assert torch.equal(segments[real], doc[real])
