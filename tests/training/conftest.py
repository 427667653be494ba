"""A tokenizer trained in-process on a small corpus, shared by the training tests (offline, seeded)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from curation.config import load_params
from tests.conftest import PARAMS
from training.tokenizer import TokenizerParams, train_bpe


CORPUS = [f"Revenue of company {i} rose {i % 17}.5% to ${1000 + i:,} million in fiscal 2023." for i in range(400)]


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    p = dataclasses.replace(load_params("tokenizer", TokenizerParams, PARAMS), vocab_size=512)
    return train_bpe(CORPUS, p)
