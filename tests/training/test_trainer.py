"""training/trainer.py: the arguments we hand the library, token counting, held-out loss, fit, and exact resume."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import TrainerCallback

from curation.config import ConfigError, load_params, parse_section
from curation.schema import DROP_SCHEMA
from tests.conftest import PARAMS
from tests.training.conftest import TINY
from training import joint
from training.base import BaseParams
from training.chat import phase_label
from training.joint import JointParams, check_groups, phase_name, phase_steps
from training.model import build_model
from training.pack import pack, tokenize_chat, tokenize_cpt
from training.trainer import (
    HELD_OUT_CPT,
    HELD_OUT_IT,
    NUM_TOKENS,
    HeldOutParams,
    PackedCollator,
    PackedRows,
    TrainParams,
    build_training_args,
    fit,
    held_out_loss,
    held_out_sample,
    mean_token_loss,
    stage_args,
)


SEQ_LEN = 128
SHIPPED = load_params("base", BaseParams, PARAMS).train
TRAIN = dataclasses.replace(
    SHIPPED, learning_rate=1e-2, warmup_ratio=0.0, max_steps=24, per_device_batch_size=4, logging_steps=4, save_steps=8
)


def cpt_text(i: int) -> str:
    return f"Revenue of company {i} rose {i % 17}.5% to ${1000 + i:,} million in fiscal 2023."


def conversation(i: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"By how much did revenue of company {i} rise?"},
        {"role": "assistant", "content": f"Revenue of company {i} rose {i % 17}.5%."},
    ]


def sequences(tokenizer: Any) -> dict[str, dict[str, list]]:
    """Token sequences of CPT text and conversations for companies 0..239 (held-out companies come later), by kind."""
    by_kind: dict[str, dict[str, list]] = {k: {"input_ids": [], "labels": [], "name": [], "capability": []}
                                           for k in ("cpt", "it")}  # fmt: skip
    for i in range(240):
        ids = tokenize_cpt(tokenizer, cpt_text(i), SEQ_LEN)[0]
        chat_ids, chat_labels = tokenize_chat(tokenizer, conversation(i))
        for kind, x, y in (("cpt", ids, ids), ("it", chat_ids, chat_labels)):
            seqs = by_kind[kind]
            seqs["input_ids"].append(x)
            seqs["labels"].append(y)
            seqs["name"].append(f"{kind}{i}")
            seqs["capability"].append("concepts")
    return by_kind


def packed(tokenizer: Any, phases: list[list[str]], path: Path) -> Path:
    """Rows packed once per phase, as the pack stage does for a group of joint.groups."""
    by_kind = sequences(tokenizer)
    tables = []
    for phase in phases:
        seqs = {key: [v for kind in phase for v in by_kind[kind][key]] for key in by_kind["cpt"]}
        tables.append(pack(seqs, SEQ_LEN, phase_label(phase)))
    pq.write_table(pa.concat_tables(tables), path)
    return path


@pytest.fixture(scope="module")
def rows(tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CPT text and conversations packed together (the joint recipe's rows)."""
    return packed(tokenizer, [["cpt", "it"]], tmp_path_factory.mktemp("pack") / "rows-test.parquet")


def tiny_model(tokenizer: Any) -> Any:
    return build_model(TINY, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)


def train(tokenizer: Any, rows: Path, tmp: Path, p: TrainParams = TRAIN, **kwargs: Any) -> tuple[Any, dict]:
    model = tiny_model(tokenizer)
    pad = tokenizer.pad_token_id
    out = fit(model, PackedRows([rows]), p, tmp / "model", tmp / "ck", SEQ_LEN, pad, "sdpa", "float32", **kwargs)
    return model, out


def test_training_args_carry_our_keys_and_deliberate_defaults(tmp_path: Path) -> None:
    args = build_training_args(SHIPPED, tmp_path / "ck")
    assert args.output_dir == str(tmp_path / "ck")
    assert (args.learning_rate, args.lr_scheduler_type.value) == (SHIPPED.learning_rate, SHIPPED.lr_scheduler)
    assert args.warmup_steps == SHIPPED.warmup_ratio  # a float < 1: a share of the steps
    assert args.get_warmup_steps(100) == round(100 * SHIPPED.warmup_ratio)
    assert (args.weight_decay, args.max_grad_norm, args.num_train_epochs) == (
        SHIPPED.weight_decay,
        SHIPPED.max_grad_norm,
        SHIPPED.epochs,
    )
    assert args.max_steps == SHIPPED.max_steps
    assert args.per_device_train_batch_size == SHIPPED.per_device_batch_size
    assert args.gradient_accumulation_steps == SHIPPED.gradient_accumulation_steps
    assert args.seed == args.data_seed == SHIPPED.seed
    assert (args.logging_steps, args.save_steps, args.save_total_limit) == (
        SHIPPED.logging_steps,
        SHIPPED.save_steps,
        SHIPPED.save_total_limit,
    )
    assert args.logging_first_step and args.save_strategy.value == "steps" and not args.save_only_model
    assert args.report_to in ([], "none", ["none"])  # DVCLive is added by fit as a callback, nothing else reports
    assert args.use_cpu and not args.bf16  # no CUDA here
    assert args.dataloader_num_workers == 0 and not args.remove_unused_columns
    assert args.include_num_input_tokens_seen == "no"  # PackedTrainer counts; the library would sum the 4-D mask
    assert build_training_args(dataclasses.replace(SHIPPED, max_steps=None), tmp_path).max_steps == -1
    with pytest.raises(ValueError, match="warmup_ratio"):
        build_training_args(dataclasses.replace(SHIPPED, warmup_ratio=1.5), tmp_path)


def test_shipped_stage_params_load_and_joint_groups_must_match() -> None:
    p = load_params("joint", JointParams, PARAMS)
    check_groups(p)
    assert load_params("held_out", HeldOutParams, PARAMS).cpt_texts > 0
    with pytest.raises(ConfigError, match="reasoning"):
        check_groups(dataclasses.replace(p, train={"foundation": p.train["foundation"]}))
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        bad = {**dataclasses.asdict(SHIPPED), "learning_rat": 1.0}
        del bad["learning_rate"]
        parse_section(bad, TrainParams, "params.yaml:base.train")
    for phases in ([["cpt"], ["cpt", "it"]], [[]], [["pref"]]):  # a kind twice, an empty phase, a kind not trained
        with pytest.raises(ConfigError, match=r"joint\.phases"):
            check_groups(dataclasses.replace(p, phases=phases))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=3, max_value=500), st.lists(st.integers(min_value=0, max_value=900), min_size=1,
       max_size=3).filter(lambda rows: 0 < sum(map(bool, rows)) <= 3))  # fmt: skip
def test_phase_steps_share_the_group_steps_by_rows(max_steps: int, rows: list[int]) -> None:
    steps = phase_steps(max_steps, rows)
    assert sum(steps) == max_steps
    assert all((s >= 1) == (n > 0) and s >= 0 for s, n in zip(steps, rows, strict=True))
    exact = [max_steps * n / sum(rows) for n in rows]
    assert all(abs(s - e) < len(rows) for s, e in zip(steps, exact, strict=True))  # rounding, plus the minimum of 1
    assert phase_steps(None, rows) == [None if n else 0 for n in rows]


def test_stage_args_add_checkpoints_to_the_stage_paths(tmp_path: Path) -> None:
    paths, checkpoints = stage_args(
        ["--input", "a", "--output", "o", "--checkpoints", "c", "--metrics", "m.json", "--plots", "p"], "doc"
    )
    assert (paths.inputs, paths.output, checkpoints, paths.plots) == ([Path("a")], Path("o"), Path("c"), Path("p"))


def test_collator_counts_real_tokens_not_padding(rows: Path, tokenizer: Any) -> None:
    data = PackedRows([rows])
    batch = PackedCollator(tokenizer.pad_token_id, SEQ_LEN, "sdpa", "float32")([data[0], data[1]])
    real = len(data[0]["input_ids"]) + len(data[1]["input_ids"])
    assert int(batch[NUM_TOKENS]) == real < 2 * SEQ_LEN + 1
    assert int((batch["input_ids"] != tokenizer.pad_token_id).sum()) == real
    assert batch["attention_mask"].shape == (2, 1, SEQ_LEN, SEQ_LEN)


def test_held_out_sample_is_fixed_whatever_the_row_order(tmp_path: Path) -> None:
    def drop(i: int, why: str) -> dict:
        it = why == HELD_OUT_IT
        return {
            "id": f"{why}{i}",
            "kind": "eval" if it else "cpt",
            "source": "s",
            "text": None if it else cpt_text(i),
            "messages": conversation(i)[:1] if it else None,
            "answer": f"{i}%" if it else None,
            "metadata": "{}",
            "reason": why,
            "detail": "",
        }

    drops = [drop(i, why) for i in range(30) for why in (HELD_OUT_CPT, HELD_OUT_IT, "mixture.other")]
    table = pa.Table.from_pylist(drops, schema=DROP_SCHEMA)
    p = HeldOutParams(cpt_texts=5, conversations=4, seed=0, batch_size=2)
    samples = []
    for k, t in enumerate((table, table.take(list(reversed(range(table.num_rows)))))):
        (tmp_path / str(k)).mkdir()
        pq.write_table(t, tmp_path / str(k) / "drops.parquet")
        samples.append(held_out_sample(tmp_path / str(k), p))
    assert samples[0] == samples[1]
    texts, conversations = samples[0]
    assert len(texts) == 5 and all(t.startswith("Revenue of company") for t in texts)
    assert len(conversations) == 4
    assert all(c[-1]["role"] == "assistant" and c[-1]["content"].endswith("%") for c in conversations)
    other = held_out_sample(tmp_path / "0", dataclasses.replace(p, seed=1))
    assert other != samples[0]


def test_held_out_loss_does_not_depend_on_padding(tokenizer: Any) -> None:
    model = tiny_model(tokenizer).eval()
    sequences = [tokenize_cpt(tokenizer, cpt_text(i) * (1 + i % 3), SEQ_LEN)[0] for i in range(7)]
    sequences = [(s, s) for s in sequences]
    with torch.no_grad():
        one = mean_token_loss(model, sequences, tokenizer.pad_token_id, batch_size=1)
        padded = mean_token_loss(model, sequences, tokenizer.pad_token_id, batch_size=7)
    assert one == pytest.approx(padded, rel=1e-5)
    assert mean_token_loss(model, [], tokenizer.pad_token_id, batch_size=2) is None


def test_fit_lowers_training_and_held_out_loss(rows: Path, tokenizer: Any, tmp_path: Path) -> None:
    held_cpt = [cpt_text(i) for i in range(300, 340)]
    held_it = [conversation(i) for i in range(300, 340)]
    model = tiny_model(tokenizer)
    before = held_out_loss(model, tokenizer, held_cpt, held_it, batch_size=8, max_length=SEQ_LEN)
    out = fit(
        model,
        PackedRows([rows]),
        TRAIN,
        tmp_path / "model",
        tmp_path / "ck",
        SEQ_LEN,
        tokenizer.pad_token_id,
        "sdpa",
        "float32",
        live_dir=tmp_path / "live",
    )
    after = held_out_loss(model, tokenizer, held_cpt, held_it, batch_size=8, max_length=SEQ_LEN)
    losses = [loss for _, loss in out["loss_history"]]
    assert losses[-1] < 0.6 * losses[0]
    assert after["cpt"] < before["cpt"] - 1.0 and after["it"] < before["it"] - 1.0
    assert out["steps"] == TRAIN.max_steps and out["tokens_per_s"] > 0
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "model" / "training_args.bin").exists()  # a pickle nobody reads is not left in the model
    loss_tsv = tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv"  # DVCLive in its folder, not the model's
    assert loss_tsv.is_file() and not any((tmp_path / "model").rglob("*.tsv"))
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["step"] > 0


def test_one_epoch_counts_every_real_token_once(rows: Path, tokenizer: Any, tmp_path: Path) -> None:
    p = dataclasses.replace(TRAIN, max_steps=None, epochs=1.0, per_device_batch_size=8, save_steps=1000)
    _, out = train(tokenizer, rows, tmp_path, p)
    assert out["tokens"] == PackedRows([rows]).tokens
    assert out["steps"] == -(-len(PackedRows([rows])) // 8)


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def test_an_interrupted_run_resumes_to_the_same_weights(rows: Path, tokenizer: Any, tmp_path: Path) -> None:
    p = dataclasses.replace(TRAIN, max_steps=12, save_steps=4, logging_steps=1)
    straight, whole = train(tokenizer, rows, tmp_path / "straight", p)
    _, first = train(tokenizer, rows, tmp_path / "resumed", p, callbacks=[StopAt(4)])
    checkpoint = tmp_path / "resumed" / "ck" / "checkpoint-4"
    assert first["steps"] == 4 and (checkpoint / "model.safetensors").is_file()
    assert not list(checkpoint.glob("pytorch_model*.bin"))  # weights are safetensors; optimizer state stays torch's
    resumed, second = train(tokenizer, rows, tmp_path / "resumed", p)
    assert second["resumed_from_step"] == 4 and second["steps"] == whole["steps"] == 12
    assert second["tokens"] == whole["tokens"]  # the count survives the resume through the trainer state
    # Same rows in the same order, same optimizer state and schedule, dropout 0 and one CPU thread layout: the
    # arithmetic is identical, so the weights are equal bit for bit, not only close.
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    later = {step: loss for step, loss in second["loss_history"] if step > 4}
    assert later == {step: loss for step, loss in whole["loss_history"] if step > 4}


@pytest.mark.parametrize("phases", [[["cpt", "it"]], [["cpt"], ["it"]]], ids=["joint", "sequential"])
def test_joint_stage_trains_each_group_from_the_last_and_leaves_no_checkpoints(
    rows: Path, tokenizer: Any, tmp_path: Path, phases: list[list[str]]
) -> None:
    params = yaml.safe_load(PARAMS.read_text())
    params["model"].update({k: getattr(TINY, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers")})
    small = {**dataclasses.asdict(TRAIN), "max_steps": 6, "save_steps": 3}
    params["joint"] = {"groups": ["first", "second"], "phases": phases, "train": {"first": small, "second": small}}
    params["held_out"] = {"cpt_texts": 10, "conversations": 10, "seed": 0, "batch_size": 4}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    base, pack_dir, mixture = tmp_path / "base", tmp_path / "pack", tmp_path / "mixture"
    tiny_model(tokenizer).save_pretrained(base)
    tokenizer.save_pretrained(base)
    pack_dir.mkdir()
    packed(tokenizer, phases, pack_dir / "rows-first.parquet")
    shutil.copy(pack_dir / "rows-first.parquet", pack_dir / "rows-second.parquet")
    mixture.mkdir()
    held = [
        {"id": f"c{i}", "source": "s", "text": cpt_text(500 + i), "reason": HELD_OUT_CPT, "detail": ""}
        for i in range(10)
    ]
    held += [
        {"id": f"e{i}", "source": "s", "messages": conversation(500 + i)[:1], "answer": "1.5%", "reason": HELD_OUT_IT}
        for i in range(10)
    ]
    pq.write_table(
        pa.Table.from_pylist([{"detail": "", **h} for h in held], schema=DROP_SCHEMA), mixture / "drops.parquet"
    )
    argv = [
        *("--input", str(base), "--input", str(pack_dir), "--input", str(mixture)),
        *("--output", str(tmp_path / "out"), "--checkpoints", str(tmp_path / "ck")),
        *("--metrics", str(tmp_path / "joint.json"), "--params", str(tmp_path / "params.yaml")),
    ]
    joint.main(argv)
    metrics = json.loads((tmp_path / "joint.json").read_text())["groups"]
    assert metrics["second"]["held_out_before"] == metrics["first"]["held_out_after"]  # second starts from first
    assert metrics["first"]["held_out_after"]["cpt"] < metrics["first"]["held_out_before"]["cpt"]
    first = metrics["first"]["phases"]
    assert list(first) == [phase_name(i, kinds) for i, kinds in enumerate(phases)]
    assert sum(ph["train"]["steps"] for ph in first.values()) == metrics["first"]["train"]["steps"] == 6
    labels = pq.read_table(pack_dir / "rows-first.parquet", columns=["phase"]).column("phase").to_pylist()
    for name, ph, phase in zip(first, first.values(), phases, strict=True):  # each phase trains on its rows only
        assert ph["train"]["rows"] == labels.count(phase_label(phase)) > 0, name
    if len(phases) == 2:  # CPT alone lowers CPT loss; IT after it lowers IT loss below what CPT left
        cpt, it = first.values()
        assert cpt["held_out_after"]["cpt"] < metrics["first"]["held_out_before"]["cpt"]
        assert it["held_out_after"]["it"] < cpt["held_out_after"]["it"]
    for group in ("first", "second"):
        assert {"model.safetensors", "config.json", "tokenizer.json"} <= {
            p.name for p in (tmp_path / "out" / group).iterdir()
        }
    assert (tmp_path / "ck").is_dir() and not any((tmp_path / "ck").iterdir())  # persist output: kept, emptied
