"""Pure: how text and conversations become token ids and labels, the one definition every training stage uses.

The loss covers CPT text fully and, in a conversation, only what the assistant says: transformers' chat-template
`{% generation %}` markers give the assistant-token mask (as trl's `assistant_only_loss` uses it), so the masking
follows the model's own template instead of a hand-written parser of roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curation.schema import Kind


IGNORE = -100  # label of a token that is not trained on (transformers' ignore_index)
TRAINED_KINDS = (Kind.CPT, Kind.IT)  # what a packed row may hold; a phase of joint.phases is a subset


def phase_label(kinds: Sequence[str]) -> str:
    """The `phase` column of a packed row: the kinds it may hold, `cpt+it` or `cpt` or `it` (training/pack.py)."""
    return "+".join(str(k) for k in kinds)


def tokenize_cpt(tokenizer: Any, text: str, seq_len: int) -> list[list[int]]:
    """BOS + text + EOS, cut into chunks of at most `seq_len` tokens."""
    ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    return [ids[i : i + seq_len] for i in range(0, len(ids), seq_len)]


def tokenize_chat(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Chat-template tokens and labels: the token where an assistant turn speaks, IGNORE elsewhere."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids = list(out["input_ids"])
    return ids, [t if m else IGNORE for t, m in zip(ids, out["assistant_masks"], strict=True)]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Where generation stops: the last token the template trains in an assistant turn (its end marker) and EOS."""
    _, labels = tokenize_chat(tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
    return sorted({[t for t in labels if t != IGNORE][-1], tokenizer.eos_token_id})
