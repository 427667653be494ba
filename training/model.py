"""The causal LM every training stage starts from: a Llama built from params.yaml, or a pretrained safetensors model.

The default is a small Llama (about 5M parameters with the 8k BPE) that trains in minutes on two CPU cores, so the
whole FinDAP recipe (CPT + IT, then preference alignment) runs end to end on a laptop; set `pretrained` to an HF id
or a local folder (e.g. meta-llama/Meta-Llama-3-8B-Instruct) to reproduce the paper's scale.

The non-obvious decision: every model leaves here with `config.use_cache = False`. A Llama built from a config has
`use_cache=True`, and then transformers 5 builds a KV cache even for a training forward; with a cache present it no
longer reads per-document `position_ids` as packed sequences, and documents in a packed row attend to each other
(measured in tests/training/test_attention.py). Training always passes an explicit mask (training/attention.py), so
this is a second guard, not the only one. The cost: `generate()` is slow until the caller passes `use_cache=True`.
Weights load from safetensors only and never with `trust_remote_code`: a user-named model must not run code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from curation.config import params


if TYPE_CHECKING:
    from transformers import PreTrainedModel


SECTION = "model"
AttnImplementation = Literal["sdpa", "eager", "flex_attention", "flash_attention_2"]


@params
class ModelParams:
    pretrained: str | None
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    tie_word_embeddings: bool
    attn_implementation: AttnImplementation
    dtype: Literal["float32", "bfloat16"]
    seed: int


def llama_config(p: ModelParams, vocab_size: int, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> Any:
    """The LlamaConfig for `p`: the one place our few keys meet the library's many."""
    from transformers import LlamaConfig

    if p.hidden_size % p.num_attention_heads or p.num_attention_heads % p.num_key_value_heads:
        raise ValueError(
            f"params.yaml model: hidden_size ({p.hidden_size}) must be a multiple of num_attention_heads "
            f"({p.num_attention_heads}), and that a multiple of num_key_value_heads ({p.num_key_value_heads})"
        )
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_hidden_layers,
        num_attention_heads=p.num_attention_heads,
        num_key_value_heads=p.num_key_value_heads,
        max_position_embeddings=p.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": p.rope_theta},
        tie_word_embeddings=p.tie_word_embeddings,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )
    config.use_cache = False  # library default True: packed documents leak through position_ids (module docstring)
    return config


def build_model(
    p: ModelParams, vocab_size: int, pad_token_id: int, bos_token_id: int, eos_token_id: int
) -> PreTrainedModel:
    """A LlamaForCausalLM from `p` (seeded), or `p.pretrained` loaded from safetensors; `use_cache` is off."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, p.dtype)
    if p.pretrained is None:
        config = llama_config(p, vocab_size, pad_token_id, bos_token_id, eos_token_id)
        with torch.random.fork_rng(devices=[]):  # seeded init without moving the caller's RNG
            torch.manual_seed(p.seed)
            return AutoModelForCausalLM.from_config(config, attn_implementation=p.attn_implementation, dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(
        p.pretrained,
        use_safetensors=True,  # never a pickle checkpoint
        trust_remote_code=False,
        attn_implementation=p.attn_implementation,
        dtype=dtype,
    )
    rows = model.get_input_embeddings().num_embeddings
    if vocab_size > rows:
        raise ValueError(
            f"params.yaml model.pretrained={p.pretrained!r} has {rows:,} embedding rows but the tokenizer has "
            f"{vocab_size:,} tokens; set tokenizer.pretrained to the same model so both share one vocabulary"
        )
    model.config.use_cache = False
    model.config.pad_token_id = pad_token_id  # a pretrained tokenizer without a pad token pads with EOS
    return model


def count_parameters(model: Any, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
    """Parameters of `model`, a tied tensor counted once; `exclude_embeddings` drops the input embedding matrix."""
    embeddings = {id(model.get_input_embeddings().weight)} if exclude_embeddings else set()
    return sum(
        t.numel()
        for t in model.parameters()  # parameters() yields a tied weight once
        if id(t) not in embeddings and (t.requires_grad or not trainable_only)
    )
