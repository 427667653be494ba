"""The runner: batched generation equals one-by-one generation, stops where the checkpoint says, and the evaluate
stage writes per-item rows and metrics, resuming per task without generating again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from evaluation import evaluate
from evaluation.evaluate import summarize
from evaluation.generate import GenerateParams, answer_loss, generate, load
from tests.conftest import PARAMS


GEN = GenerateParams(batch_size=4, device="cpu", dtype="float32")


PROMPTS = [
    [{"role": "user", "content": f"What was revenue of company {i}?" + " Explain." * (i % 4)}] for i in range(7)
]


def test_batched_generation_equals_one_prompt_at_a_time(checkpoint: Path) -> None:
    model, tokenizer = load(checkpoint, GEN)
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=4)
    alone = [generate(model, tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone
    assert len({b[0] for b in batched}) > 1  # distinct prompts, distinct outputs: the order is restored


def test_generation_stops_at_the_checkpoints_stop_tokens_and_leaves_them_out(checkpoint: Path) -> None:
    model, tokenizer = load(checkpoint, GEN)
    prompt = tokenizer.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True)
    with torch.inference_mode():
        logits = model(**tokenizer(prompt, return_tensors="pt", add_special_tokens=False)).logits
    model.generation_config.eos_token_id = [int(logits[0, -1].argmax())]  # greedy decoding's first token ends the turn
    assert generate(model, tokenizer, PROMPTS[:1], max_new_tokens=6, batch_size=1) == [[""]]


def test_sampling_is_seeded_and_returns_the_asked_number_of_samples(checkpoint: Path) -> None:
    model, tokenizer = load(checkpoint, GEN)
    run = lambda seed: generate(model, tokenizer, PROMPTS[:2], 8, 2, num_samples=3, temperature=1.0, seed=seed)  # noqa: E731
    first = run(0)
    assert [len(s) for s in first] == [3, 3] and first == run(0) and first != run(1)


def test_answer_loss_is_the_models_own_loss_on_the_answer_tokens_batched_or_not(checkpoint: Path) -> None:
    model, tokenizer = load(checkpoint, GEN)
    answers = [f"Revenue was ${i},000 million." * (1 + i % 3) for i in range(len(PROMPTS))]
    batched = answer_loss(model, tokenizer, PROMPTS, answers, batch_size=3)
    for prompt, answer, got in zip(PROMPTS, answers, batched, strict=True):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        context = tokenizer(text, add_special_tokens=False).input_ids
        ids = torch.tensor([context + tokenizer(answer, add_special_tokens=False).input_ids])
        labels = ids.clone()
        labels[0, : len(context)] = -100  # transformers' own masked causal-LM loss is the reference
        with torch.inference_mode():
            assert got == pytest.approx(float(model(input_ids=ids, labels=labels).loss), abs=1e-5)
    assert len(set(batched)) == len(batched)


def test_summarize_averages_tasks_per_capability_and_group() -> None:
    tasks = {
        "a": {"capability": "tasks", "group": "similar", "score": 0.5},
        "b": {"capability": "tasks", "group": "novel", "score": 0.1},
        "c": {"capability": "general", "group": "similar", "score": 1.0},
    }
    assert summarize(tasks) == {
        "capabilities": {
            "general": {"score": 1.0, "similar": 1.0},
            "tasks": {"novel": 0.1, "score": 0.3, "similar": 0.5},
        },
        "groups": {"novel": 0.1, "similar": 0.75},
        "overall": 0.65,
    }


def stage(tmp_path: Path, checkpoint: Path, curated: Path) -> list[str]:
    params = yaml.safe_load(PARAMS.read_text())
    params["evaluate"] |= {"tasks": ["fintrain_sentiment", "fintrain_multiple_choice"],
                           "paths": {"curated": str(curated)}, "generate": dataclasses.asdict(GEN)}  # fmt: skip
    params["io"]["catalog"] = str(tmp_path / "catalog.duckdb")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return ["--input", str(checkpoint), "--output", str(tmp_path / "tiny"), "--metrics", str(tmp_path / "m.json"),
            "--params", str(tmp_path / "params.yaml")]  # fmt: skip


def test_evaluate_stage_writes_items_and_metrics_and_resumes_without_generating(
    tmp_path: Path, checkpoint: Path, curated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = stage(tmp_path, checkpoint, curated)
    evaluate.main(argv)
    metrics = json.loads((tmp_path / "m.json").read_text())
    rows = {t: pq.read_table(tmp_path / "tiny" / f"{t}.parquet") for t in metrics["tasks"]}
    assert {t: r.num_rows for t, r in rows.items()} == {"fintrain_multiple_choice": 32, "fintrain_sentiment": 20}
    for task, table in rows.items():
        m = metrics["tasks"][task]
        assert m["n"] == table.num_rows and m["unparsed"] == table.column("extracted").null_count
        assert m["score"] == pytest.approx(sum(table.column("score").to_pylist()) / table.num_rows)
    assert set(metrics["capabilities"]) == {"reasoning", "tasks"} and metrics["generation"]["items_generated"] == 52
    for task, table in rows.items():
        losses = table.column("target_nll").to_pylist()
        assert None not in losses and metrics["tasks"][task]["target_nll"] == pytest.approx(
            sum(losses) / len(losses), abs=1e-4
        )
    assert all(c["target_nll"] > 0 for c in metrics["capabilities"].values())

    before = {t: (tmp_path / "tiny" / f"{t}.parquet").read_bytes() for t in rows}

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an unchanged task was generated again")

    monkeypatch.setattr(evaluate, "generate", fail)
    evaluate.main(argv)
    assert {t: (tmp_path / "tiny" / f"{t}.parquet").read_bytes() for t in rows} == before
    assert json.loads((tmp_path / "m.json").read_text())["generation"]["items_generated"] == 0
