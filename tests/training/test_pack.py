from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.schema import RECORD_SCHEMA
from tests.curation.stage_helpers import make_record
from training.chat import IGNORE, tokenize_chat, tokenize_cpt
from training.pack import group_metrics, pack, tokenize


def test_cpt_chunks_cover_the_document_exactly(tokenizer: Any) -> None:
    text = " ".join(f"Revenue rose {i} percent." for i in range(60))
    chunks = tokenize_cpt(tokenizer, text, seq_len=32)
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert [t for c in chunks for t in c] == [tokenizer.bos_token_id, *whole, tokenizer.eos_token_id]
    assert all(len(c) == 32 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 32


def test_chat_labels_are_exactly_the_assistant_tokens(tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "Define beta."}, {"role": "assistant", "content": "Market risk."}]
    ids, labels = tokenize_chat(tokenizer, messages)
    assert len(ids) == len(labels)
    assert tokenizer.decode([t for t in labels if t != IGNORE]) == "Market risk.<|im_end|>"
    assert all(label in (IGNORE, t) for t, label in zip(ids, labels, strict=True))


WORDS = st.text(alphabet="abcdefghij klmnop.,0123456789$%", min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=4), st.booleans())
def test_chat_masking_trains_on_every_assistant_turn_and_nothing_else(
    tokenizer: Any, turns: list[tuple[str, str]], system: bool
) -> None:
    """For any conversation: labels align with ids, and the trained tokens are the assistant turns, in order."""
    messages = [{"role": "system", "content": "Be brief."}] if system else []
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    ids, labels = tokenize_chat(tokenizer, messages)
    assert len(ids) == len(labels) and all(label in (IGNORE, t) for t, label in zip(ids, labels, strict=True))
    trained = tokenizer.decode([t for t in labels if t != IGNORE])
    assert trained == "".join(f"{answer}<|im_end|>" for _, answer in turns)


def test_tokenize_drops_what_cannot_be_trained_on(tokenizer: Any) -> None:
    long_answer = " ".join(["revenue"] * 80)
    rows = [
        make_record(" ".join(f"word{i}" for i in range(100))),  # split into chunks
        make_record(
            kind="it", messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": long_answer}]
        ),
        make_record(kind="it", messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "ok"}]),
    ]
    seqs, drops = tokenize(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), tokenizer, seq_len=48)
    assert [(i, failure) for i, failure, _ in drops] == [(1, "too_long")]
    cpt_id = rows[0]["id"]
    assert seqs["name"][:-1] == [f"{cpt_id}#{k}" for k in range(len(seqs["name"]) - 1)] and len(seqs["name"]) > 3
    assert seqs["name"][-1] == rows[2]["id"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=60), st.sampled_from([64, 100]))
def test_packing_loses_and_duplicates_no_token(lengths: list[int], seq_len: int) -> None:
    seqs: dict[str, list] = {"input_ids": [], "labels": [], "name": [], "capability": []}
    for d, n in enumerate(lengths):
        seqs["input_ids"].append([d * 1000 + k for k in range(n)])  # every token says which document it came from
        seqs["labels"].append([IGNORE if k % 3 == 0 else d * 1000 + k for k in range(n)])
        seqs["name"].append(f"doc{d}")
        seqs["capability"].append("tasks" if d % 2 else "concepts")
    rows = pack(seqs, seq_len).to_pylist()
    seen = {}
    for row in rows:
        assert len(row["input_ids"]) == len(row["labels"]) == sum(row["seq_lengths"]) <= seq_len
        offset = 0
        for name, n in zip(row["documents"], row["seq_lengths"], strict=True):
            d = int(name[3:])
            assert name not in seen
            seen[name] = row["input_ids"][offset : offset + n]
            assert seen[name] == seqs["input_ids"][d] and row["labels"][offset : offset + n] == seqs["labels"][d]
            offset += n
    assert sorted(seen) == sorted(seqs["name"])
    metrics = group_metrics(pack(seqs, seq_len), seq_len)
    assert metrics["tokens"] == sum(lengths) and metrics["sequences"] == len(lengths)
    assert metrics["efficiency"] == round(sum(lengths) / (len(rows) * seq_len), 4)
    assert sum(metrics["tokens_by_capability"].values()) == sum(lengths)
