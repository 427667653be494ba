"""training/rpo.py: the RPO configuration (DPO + NLL, reference log-probs precomputed), the rendering of FAP and SCP
pairs, a reward margin that grows while training, and an exact resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, TrainerCallback

from curation.config import load_params
from curation.schema import RECORD_SCHEMA
from tests.conftest import PARAMS
from tests.training.conftest import TINY
from training.model import ModelParams, build_model
from training.rpo import RpoParams, align, dpo_config, dpo_rows


P = load_params("rpo", RpoParams, PARAMS)
MODEL = load_params("model", ModelParams, PARAMS)


def test_dpo_config_is_rpo_with_the_params_and_precomputes_the_reference(tmp_path: Path) -> None:
    config = dpo_config(P, tmp_path)
    assert config.loss_type == ["sigmoid", "sft"] and config.loss_weights == [1.0, P.alpha]
    assert (config.beta, config.max_length, config.learning_rate) == (P.beta, P.max_length, P.train.learning_rate)
    assert (
        config.max_steps == P.train.max_steps and config.per_device_train_batch_size == P.train.per_device_batch_size
    )
    assert config.precompute_ref_log_probs and not config.bf16  # CPU: no mixed precision
    assert config.output_dir == str(tmp_path)


def pairs(n: int, prefix: bool = False) -> pa.Table:
    rows = []
    for i in range(n):
        messages = [{"role": "user", "content": f"What was revenue of company {i}?"}]
        if prefix:
            messages.append({"role": "assistant", "content": f"Revenue of company {i}"})
        rows.append({"id": f"p{i}", "kind": "pref", "source": "it_reasoning", "capability": "reasoning",
                     "language": "en", "split": "train", "messages": messages,
                     "chosen": f"{' rose' if prefix else 'It rose'} {i % 17}.5% to ${1000 + i:,} million.",
                     "rejected": "It fell.", "metadata": "{}"})  # fmt: skip
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def test_pairs_render_as_the_chat_template_renders_the_whole_answer(checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    (fap,) = dpo_rows(tokenizer, pairs(1))
    question = [{"role": "user", "content": "What was revenue of company 0?"}]
    answer = {"role": "assistant", "content": "It rose 0.5% to $1,000 million."}
    whole = tokenizer.apply_chat_template([*question, answer], tokenize=False)
    assert fap["prompt"] == tokenizer.apply_chat_template(question, tokenize=False, add_generation_prompt=True)
    assert whole.startswith(fap["prompt"] + fap["chosen"])  # the completion ends where the template ends the turn
    assert fap["chosen"].endswith("<|im_end|>") and fap["rejected"] == "It fell.<|im_end|>"
    (scp,) = dpo_rows(tokenizer, pairs(1, prefix=True))
    answer = "Revenue of company 0 rose 0.5% to $1,000 million."
    whole = tokenizer.apply_chat_template([*question, {"role": "assistant", "content": answer}], tokenize=False)
    assert whole.startswith(scp["prompt"] + scp["chosen"])  # the prefix is continued, not closed
    assert scp["prompt"].endswith("Revenue of company 0")


@pytest.fixture
def policy(checkpoint: Path, tmp_path: Path) -> Path:
    """A freshly initialized tiny Llama (default init) with the shared tokenizer, saved as a training stage would."""
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    torch.manual_seed(0)
    model = build_model(TINY, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    model.save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    return tmp_path / "policy"


FAST = dataclasses.replace(
    P,
    train=dataclasses.replace(
        P.train,
        learning_rate=5e-3,
        max_steps=8,
        per_device_batch_size=4,
        logging_steps=1,
        save_steps=2,
        warmup_ratio=0.0,
    ),
)


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step == self.step:
            control.should_save, control.should_training_stop = True, True
        return control


def test_the_reward_margin_grows_and_an_interrupted_run_resumes_exactly(policy: Path, tmp_path: Path) -> None:
    data = pairs(16)
    whole = align(policy, data, FAST, MODEL, tmp_path / "whole", tmp_path / "ckpt-whole")
    margins = whole["margins"]
    assert len(margins["history"]) == 8 and margins["history"][0][1] == pytest.approx(0.0, abs=1e-3)
    assert margins["last"] > margins["first"] + 0.1 and margins["last"] > 0  # chosen pulls away from rejected
    assert whole["steps"] == 8 and whole["resumed_from_step"] == 0
    assert (tmp_path / "whole" / "tokenizer_config.json").is_file()
    assert not (tmp_path / "whole" / "training_args.bin").exists()
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["use_cache"] is False

    stopped = align(policy, data, FAST, MODEL, tmp_path / "half", tmp_path / "ckpt", callbacks=[StopAt(4)])
    assert stopped["steps"] == 4
    resumed = align(policy, data, FAST, MODEL, tmp_path / "resumed", tmp_path / "ckpt")
    assert (resumed["resumed_from_step"], resumed["steps"]) == (4, 8)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_no_pairs_is_an_error_that_says_where_to_look(policy: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pairs\.json"):
        align(policy, pairs(0), FAST, MODEL, tmp_path / "out", tmp_path / "ckpt")
