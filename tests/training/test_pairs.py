"""training/pairs.py: FAP and SCP pairs from judged trajectories, each drop with its reason, the books balanced."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pyarrow as pa
import pytest

from curation.config import load_params
from tests.conftest import PARAMS
from training.pairs import PairsParams, pair_record, prompt_pairs, run


P = load_params("pairs", PairsParams, PARAMS)
REFERENCE = "Program: add(1, 2)\nStep 1: add(1, 2) = 1 + 2 = 3\nAnswer: 3"


def row(sample: int, output: str, correct: bool | None, step: int | None = None, fix: str | None = None,
        prompt_id: str = "p1") -> dict[str, Any]:  # fmt: skip
    return {"prompt_id": prompt_id, "source": "it_reasoning", "capability": "reasoning", "language": "en",
            "task": "program", "prompt": [{"role": "user", "content": f"What is 1 + 2? ({prompt_id})"}],
            "reference": REFERENCE, "sample": sample, "output": output, "metadata": json.dumps({"task": "program"}),
            "correct": correct, "first_wrong_step": step, "correction": fix, "verdict": "",
            "judge_detail": ""}  # fmt: skip


WRONG = "Program: add(1, 2)\nStep 1: add(1, 2) = 1 + 2 = 4\nAnswer: 4"
FIX = "Step 1: add(1, 2) = 1 + 2 = 3\nAnswer: 3"
ROWS = [
    row(0, REFERENCE, True),
    row(1, WRONG, False, 1, FIX),
    row(2, WRONG, False, 1, FIX),  # the same wrong trajectory twice: one FAP and one SCP pair, not two
    row(3, "Answer: 5", False, 0, REFERENCE),
]


def by_type(pairs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [q for q in pairs if q["type"] == kind]


def test_fap_pairs_a_right_trajectory_with_each_distinct_wrong_one() -> None:
    pairs, why = prompt_pairs(ROWS, P)
    fap = by_type(pairs, "fap")
    assert why is None and len(fap) == 2
    assert {q["chosen"] for q in fap} == {REFERENCE} and {q["chosen_from"] for q in fap} == {"policy"}
    assert {q["rejected"] for q in fap} == {WRONG, "Answer: 5"}


def test_scp_keeps_the_right_prefix_and_prefers_the_correction_to_the_wrong_step() -> None:
    scp = by_type(prompt_pairs(ROWS, dataclasses.replace(P, types=["scp"]))[0], "scp")
    assert len(scp) == 2
    step1 = next(q for q in scp if q["first_wrong_step"] == 1)
    assert step1["prefix"] == ["Program: add(1, 2)"] and step1["chosen"] == FIX
    assert step1["rejected"] == "Step 1: add(1, 2) = 1 + 2 = 4\nAnswer: 4"
    step0 = next(q for q in scp if q["first_wrong_step"] == 0)
    assert step0["prefix"] == [] and (step0["chosen"], step0["rejected"]) == (REFERENCE, "Answer: 5")


def test_an_scp_pair_equal_to_a_fap_pair_is_kept_once() -> None:
    pairs = prompt_pairs(ROWS, P)[0]  # row 3's step-0 correction is the reference, which FAP already prefers
    assert len(by_type(pairs, "fap")) == 2 and [q["first_wrong_step"] for q in by_type(pairs, "scp")] == [1]


def test_limits_types_and_a_correction_that_changes_nothing() -> None:
    one = dataclasses.replace(P, max_fap_per_prompt=1, max_scp_per_prompt=1)
    pairs = prompt_pairs(ROWS, one)[0]
    assert len(by_type(pairs, "fap")) == 1 and len(by_type(pairs, "scp")) == 1
    assert not by_type(prompt_pairs(ROWS, dataclasses.replace(P, types=["fap"]))[0], "scp")
    same = [row(0, REFERENCE, True), row(1, "Answer: 4", False, 0, "Answer: 4")]
    assert by_type(prompt_pairs(same, P)[0], "scp") == []


def test_no_right_trajectory_uses_the_gold_answer_as_chosen_only_when_allowed() -> None:
    wrong = [row(0, "Answer: 4", False), row(1, "Answer: 5", False)]
    pairs, _ = prompt_pairs(wrong, P)
    assert {(q["chosen"], q["chosen_from"]) for q in pairs} == {(REFERENCE, "reference")} and len(pairs) == 2
    strict = dataclasses.replace(P, reference_when_none_correct=False)
    assert prompt_pairs(wrong, strict) == ([], "pairs.no_correct_no_step")
    assert prompt_pairs(wrong, dataclasses.replace(strict, types=["fap"])) == ([], "pairs.no_correct")


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([row(0, REFERENCE, True), row(1, REFERENCE, True)], "pairs.all_correct"),
        ([row(0, "x", None), row(1, "y", None)], "pairs.unjudged"),
    ],
)
def test_a_prompt_without_pairs_says_why(rows: list[dict[str, Any]], why: str) -> None:
    assert prompt_pairs(rows, P) == ([], why)


def test_the_pair_draw_is_seeded_and_independent_of_input_order() -> None:
    many = [row(k, f"Answer: {k}", False) for k in range(6)]
    one = dataclasses.replace(P, max_fap_per_prompt=2, types=["fap"])
    first = prompt_pairs(many, one)[0]
    assert prompt_pairs(many[::-1], one)[0] == first
    assert prompt_pairs(many, dataclasses.replace(one, seed=1))[0] != first


def test_scp_records_continue_the_prefix_as_an_assistant_message() -> None:
    scp = next(q for q in prompt_pairs(ROWS, P)[0] if q["first_wrong_step"] == 1)
    record = pair_record(ROWS[0], scp)
    assert record["messages"][-1] == {"role": "assistant", "content": "Program: add(1, 2)"}
    assert record["chosen"] == "\n" + FIX and record["kind"] == "pref"
    meta = json.loads(record["metadata"])["pairs"]
    assert meta.pop("rejected_sample") in (1, 2)  # the two equal wrong trajectories: whichever the draw took first
    assert meta == {"type": "scp", "chosen_from": "judge", "chosen_sample": None, "first_wrong_step": 1,
                    "prompt_id": "p1", "prefix_steps": 1}  # fmt: skip


def test_the_stage_balances_prompts_and_counts_pairs_per_source() -> None:
    rows = [*ROWS, row(0, REFERENCE, True, prompt_id="p2"), row(1, REFERENCE, True, prompt_id="p2")]
    records, drops, metrics = run(pa.Table.from_pylist(rows), P)
    assert metrics["in"] == 2 == metrics["kept"] + sum(metrics["dropped"].values())
    assert drops.column("reason").to_pylist() == ["pairs.all_correct"] and drops.column("id").to_pylist() == ["p2"]
    assert metrics["pairs"] == {"fap": 2, "scp": 1} and records.num_rows == 3
    assert metrics["by_source"]["it_reasoning/reasoning"]["fap_chosen_from_policy"] == 2
    assert len(set(records.column("id").to_pylist())) == 3
    again, _, _ = run(pa.Table.from_pylist(rows[::-1]), P)
    assert again.sort_by("id").equals(records.sort_by("id"))
