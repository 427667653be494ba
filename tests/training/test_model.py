"""The model builder: shipped params, cache off (packed documents leak through a KV cache), seeded, safetensors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.training.conftest import BOS, EOS, PAD, SHIPPED, TINY, VOCAB, tiny
from training.model import build_model, count_parameters


def test_build_model_from_shipped_params_turns_the_cache_off() -> None:
    model = build_model(SHIPPED, 8192, PAD, BOS, EOS)
    assert model.config.use_cache is False and model.config._attn_implementation == SHIPPED.attn_implementation
    assert model.config.max_position_embeddings == SHIPPED.max_position_embeddings
    embeddings = 8192 * SHIPPED.hidden_size
    assert count_parameters(model) - count_parameters(model, exclude_embeddings=True) == embeddings
    assert count_parameters(model) == sum(t.numel() for t in model.state_dict().values()) - embeddings  # tied head


def test_build_model_is_seeded_and_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = tiny(), tiny()
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    c = build_model(dataclasses.replace(TINY, seed=TINY.seed + 1), VOCAB, PAD, BOS, EOS)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_pretrained_loads_safetensors_with_the_cache_off(tmp_path: Path) -> None:
    saved = tiny()
    saved.config.use_cache = True
    saved.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    p = dataclasses.replace(TINY, pretrained=str(tmp_path))
    loaded = build_model(p, VOCAB, PAD, BOS, EOS)
    assert loaded.config.use_cache is False
    assert all(torch.equal(x, y) for x, y in zip(saved.parameters(), loaded.parameters(), strict=True))
    with pytest.raises(ValueError, match=r"tokenizer\.pretrained"):
        build_model(p, VOCAB + 1, PAD, BOS, EOS)
