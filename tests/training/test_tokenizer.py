from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa

from curation.config import load_params
from curation.schema import RECORD_SCHEMA
from tests.conftest import PARAMS
from tests.training.conftest import CORPUS
from training.tokenizer import TokenizerParams, chars_per_token, training_texts


P = dataclasses.replace(load_params("tokenizer", TokenizerParams, PARAMS), vocab_size=512)


def test_digits_are_single_tokens_and_text_round_trips(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "Net income was $12,345.6 million in 2024."
    digits = [t for t in tokenizer.tokenize(text) if any(c.isdigit() for c in t)]
    assert digits and all(len(t) == 1 for t in digits)
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert 256 + 5 < len(tokenizer) <= P.vocab_size  # bytes + specials + merges this small corpus supports


def test_chat_template_masks_exactly_the_assistant_turns(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Define EBITDA."},
        {"role": "assistant", "content": "Earnings before interest."},
        {"role": "user", "content": "And EBIT?"},
        {"role": "assistant", "content": "Before interest and tax."},
    ]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(kept) == "Earnings before interest.<|im_end|>Before interest and tax.<|im_end|>"
    assert tokenizer.decode(out["input_ids"]).startswith("<|bos|><|im_start|>system\nBe brief.<|im_end|>\n")


def test_training_texts_ignore_eval_items_and_input_order() -> None:
    rows = [
        {"split": "train", "text": "a filing", "messages": None},
        {
            "split": "train",
            "text": None,
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}],
        },
        {"split": "eval", "text": None, "messages": [{"role": "user", "content": "held-out question"}]},
    ]
    schema = pa.schema([RECORD_SCHEMA.field(c) for c in ("split", "text", "messages")])
    forward = training_texts(pa.Table.from_pylist(rows, schema=schema), 10, seed=0)
    backward = training_texts(pa.Table.from_pylist(rows[::-1], schema=schema), 10, seed=0)
    assert sorted(forward) == ["a filing", "q", "r"] and forward == backward


def test_compression_is_measured(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert 1.0 < chars_per_token(tokenizer, CORPUS[:20]) < 10.0
