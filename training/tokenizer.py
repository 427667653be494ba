"""Stage `tokenizer`: the tokenizer every later stage uses, saved with its chat template.

With `pretrained` set (a Hugging Face id or a local model folder) the stage loads that model's tokenizer, so a real
instruct model keeps its own vocabulary; for training, its chat template is swapped for the one in params.yaml only
if the model's own has no `{% generation %}` markers (transformers needs them to mask non-assistant tokens).

Offline, the embedded default trains a byte-level BPE with `tokenizers` on the curated training text. Digits are
split one by one before BPE (as Llama and nanochat do with short digit groups): figures are what a financial model
computes with, and a vocabulary that merges "2023" but not "2024" makes arithmetic harder to learn. The cost is
longer sequences on number-dense filings (reported as characters per token in the metrics).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import pyarrow.compute as pc

from curation.config import load_params, params
from curation.io import read_records, stage_paths, write_metrics
from curation.progress import setup_logging
from curation.schema import MESSAGES, SPLIT, TEXT, Split


log = logging.getLogger(__name__)
STAGE = "tokenizer"


@params
class TokenizerParams:
    pretrained: str | None
    vocab_size: int
    min_frequency: int
    max_documents: int
    seed: int
    bos_token: str
    eos_token: str
    pad_token: str
    extra_special_tokens: list[str]
    chat_template: str


def training_texts(table: Any, max_documents: int, seed: int) -> list[str]:
    """CPT texts and every conversation turn of the training split, a seeded sample of at most `max_documents`."""
    train = table.filter(pc.equal(table.column(SPLIT), Split.TRAIN))
    texts = [t for t in train.column(TEXT).to_pylist() if t]
    texts += [turn["content"] for conv in train.column(MESSAGES).to_pylist() if conv for turn in conv]
    texts.sort()  # input order must not matter
    random.Random(seed).shuffle(texts)
    return texts[:max_documents]


def train_bpe(texts: Sequence[str], p: TokenizerParams) -> Any:
    """A byte-level BPE (digits split individually) wrapped as a transformers fast tokenizer with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [p.pad_token, p.bos_token, p.eos_token, *p.extra_special_tokens]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=p.vocab_size,
        min_frequency=p.min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=p.bos_token,
        eos_token=p.eos_token,
        pad_token=p.pad_token,
        extra_special_tokens=p.extra_special_tokens,
        chat_template=p.chat_template,
    )


def load_pretrained(p: TokenizerParams) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(p.pretrained)  # never trust_remote_code on a user-named model
    if not tokenizer.chat_template or "generation" not in tokenizer.chat_template:
        tokenizer.chat_template = p.chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def chars_per_token(tokenizer: Any, texts: Sequence[str]) -> float:
    """Compression on held-out text: how many characters one token carries."""
    n_tokens = sum(len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"])
    return sum(map(len, texts)) / max(n_tokens, 1)


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, TokenizerParams, paths.params)
    start = time.perf_counter()
    texts = training_texts(read_records(paths.inputs, columns=[SPLIT, TEXT, MESSAGES]), p.max_documents + 200, p.seed)
    held_out, texts = texts[:200], texts[200:]
    tokenizer = load_pretrained(p) if p.pretrained else train_bpe(texts, p)
    paths.output.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(paths.output))
    metrics = {
        "vocab_size": len(tokenizer),
        "trained_on_texts": 0 if p.pretrained else len(texts),
        "held_out_chars_per_token": round(chars_per_token(tokenizer, held_out), 4),
        "pretrained": p.pretrained,
    }
    write_metrics(metrics, paths.metrics)
    log.info(
        "tokenizer: %s tokens, %.2f chars/token on held-out text (%.1f s)",
        f"{len(tokenizer):,}",
        metrics["held_out_chars_per_token"],
        time.perf_counter() - start,
    )


if __name__ == "__main__":
    setup_logging()
    main()
