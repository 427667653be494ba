from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.schema import RECORD_SCHEMA
from tests.curation.stage_helpers import make_record
from training.chat import IGNORE, tokenize_chat, tokenize_cpt
from training.pack import group_metrics, pack, pack_group, tokenize


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
    rows = pack(seqs, seq_len, "cpt+it").to_pylist()
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
    metrics = group_metrics(pack(seqs, seq_len, "cpt+it"), seq_len)
    assert metrics["tokens"] == sum(lengths) and metrics["sequences"] == len(lengths)
    assert metrics["efficiency"] == round(sum(lengths) / (len(rows) * seq_len), 4)
    assert sum(metrics["tokens_by_capability"].values()) == sum(lengths)


def test_a_group_is_packed_once_per_phase_and_rows_hold_only_its_kinds(tokenizer: Any) -> None:
    chat = [{"role": "user", "content": "Define beta."}, {"role": "assistant", "content": "Market risk."}]
    records = [make_record(f"Revenue rose {i} percent in fiscal 2023.") for i in range(6)]
    records += [make_record(kind="it", messages=chat) for _ in range(6)]
    records.insert(3, make_record(kind="it", messages=[chat[0]]))  # nothing to train on: dropped, by its index
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    kind_of = {r["id"]: r["kind"] for r in records}
    for phases in ([["cpt", "it"]], [["cpt"], ["it"]], [["it"]]):
        rows, drops = pack_group(table, tokenizer, 64, phases)
        not_trained = [i for i, r in enumerate(records) if r["kind"] == "cpt"] if phases == [["it"]] else []
        assert [i for i, *_ in drops] == sorted([3, *not_trained])
        assert {f for i, f, _ in drops if i != 3} <= {"kind_not_trained"}
        for row in rows.to_pylist():
            assert row["phase"] in {"+".join(p) for p in phases}
            assert {kind_of[d] for d in row["documents"]} <= set(row["phase"].split("+"))
        packed = sorted(d for row in rows.column("documents").to_pylist() for d in row)
        kinds = {k for p in phases for k in p}
        assert packed == sorted(r["id"] for i, r in enumerate(records) if i != 3 and r["kind"] in kinds)
