"""A tokenizer trained in-process on a small corpus, shared by the training tests (offline, seeded)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from curation.config import load_params
from tests.conftest import PARAMS
from training.model import ModelParams, build_model
from training.tokenizer import TokenizerParams, train_bpe


CORPUS = [f"Revenue of company {i} rose {i % 17}.5% to ${1000 + i:,} million in fiscal 2023." for i in range(400)]


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    p = dataclasses.replace(load_params("tokenizer", TokenizerParams, PARAMS), vocab_size=512)
    return train_bpe(CORPUS, p)


SHIPPED = load_params("model", ModelParams, PARAMS)
TINY = dataclasses.replace(
    SHIPPED, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)
VOCAB, PAD, BOS, EOS = 101, 0, 1, 2


def tiny(attn: str = "sdpa", use_cache: bool = False) -> Any:
    """A tiny Llama from the shipped model params, in eval mode."""
    model = build_model(dataclasses.replace(TINY, attn_implementation=attn), VOCAB, PAD, BOS, EOS).eval()
    model.config.use_cache = use_cache
    return model
