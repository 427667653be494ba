"""training/sample.py: preference prompts and their gold answers, num_samples trajectories each, and a resumed run
that ends with exactly the samples of one that was never stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation.schema import RECORD_SCHEMA
from evaluation.generate import GenerateParams
from training import sample
from training.sample import SampleParams, prompts


P = SampleParams(num_samples=3, temperature=1.0, max_new_tokens=6, seed=0, chunk_prompts=2,
                 generate=GenerateParams(batch_size=2, device="cpu", dtype="float32"))  # fmt: skip


def record(i: int, role: str = "preference", answer: str | None = "Answer: 1") -> dict[str, Any]:
    messages = [{"role": "user", "content": f"What was revenue of company {i}?"}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {"id": f"r{i}", "kind": "it", "source": "it_reasoning", "capability": "reasoning", "language": "en",
            "split": "train", "messages": messages,
            "metadata": json.dumps({"task": "program", "mixture": {"role": role}})}  # fmt: skip


MIXTURE = pa.Table.from_pylist([*(record(i) for i in range(5)), record(5, role="train"), record(6, answer=None)],
                               schema=RECORD_SCHEMA)  # fmt: skip


def test_prompts_are_the_preference_records_without_their_gold_answer() -> None:
    kept, dropped = prompts(MIXTURE)
    assert [r["prompt_id"] for r in kept] == ["r0", "r1", "r2", "r3", "r4"]
    assert kept[0]["reference"] == "Answer: 1" and [m["role"] for m in kept[0]["prompt"]] == ["user"]
    assert [(d["id"], d["reason"]) for d in dropped] == [("r6", "sample.no_reference")]


def test_every_prompt_gets_num_samples_and_an_interrupted_run_resumes_to_the_same_samples(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, _, metrics = sample.run(MIXTURE, checkpoint, tmp_path / "whole", P)
    assert whole.num_rows == 5 * 3 and metrics["samples"] == 15 and metrics["in"] == 6
    assert metrics["kept"] + sum(metrics["dropped"].values()) == metrics["in"]
    assert [r["sample"] for r in whole.to_pylist()[:3]] == [0, 1, 2]
    assert len(set(whole.column("output").to_pylist())) > 3  # sampled, not one greedy answer repeated

    calls, crash_at = [], {2}
    real = sample.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) in crash_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate", generate)
    with pytest.raises(KeyboardInterrupt):
        sample.run(MIXTURE, checkpoint, tmp_path / "resumed", P)
    assert len(list((tmp_path / "resumed").glob("*.parquet"))) == 1
    calls.clear()
    crash_at.clear()
    resumed, _, _ = sample.run(MIXTURE, checkpoint, tmp_path / "resumed", P)
    assert len(calls) == 2 and resumed.equals(whole)  # chunks 2 and 3 generated; chunk 1 reused
