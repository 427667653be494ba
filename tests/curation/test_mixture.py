from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pytest

from curation import mixture
from curation.config import load_params
from curation.mixture import GroupParams, MixtureParams, run
from curation.schema import RECORD_SCHEMA
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input


P = load_params("mixture", MixtureParams, PARAMS)


def conversation(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "one two three four five"}]


def world(n_cpt: int = 200, n_it: int = 40) -> pa.Table:
    rows = [make_record(" ".join(["word"] * (5 + i % 20)) + f" {i}", capability="concepts") for i in range(n_cpt)]
    rows += [
        make_record(kind="it", source="it_c", capability="concepts", messages=conversation(i)) for i in range(n_it)
    ]
    rows += [
        make_record(kind="it", source="it_r", capability="reasoning", messages=conversation(-i)) for i in range(n_it)
    ]
    rows += [make_record(kind="eval", source="ev", split="eval", messages=conversation(99)[:1], answer="a")]
    rows += [make_record("a general page", source="gen", capability="general")]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def groups(records: pa.Table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records.to_pylist():
        out.setdefault(json.loads(r["metadata"])["mixture"]["group"], []).append(r)
    return out


def words(rows: list[dict]) -> int:
    return sum(
        len(r["text"].split()) if r["text"] else sum(len(m["content"].split()) for m in r["messages"]) for r in rows
    )


ONE_GROUP = dataclasses.replace(P, groups=[GroupParams("g1", ["concepts"]), GroupParams("g2", ["reasoning"])])


def test_cpt_is_downsampled_to_the_it_size_of_its_group() -> None:
    records, drops, metrics = run(world(), ONE_GROUP)
    by = groups(records)
    cpt = [r for r in by["g1"] if r["kind"] == "cpt"]
    it_words = words([r for r in by["g1"] if r["kind"] == "it"])
    assert it_words <= words(cpt) < it_words + 25  # reaches the IT size, overshooting by less than one document
    assert metrics["groups"]["g1"]["cpt_to_it"] == pytest.approx(1.0, abs=0.1)
    assert {r["source"] for r in by["g2"]} == {"it_r"}
    reasons = metrics["dropped"]
    assert reasons["mixture.eval_item"] == 1 and reasons["mixture.no_group"] == 1  # the general page has no group
    assert metrics["in"] == metrics["kept"] - metrics["copies"] + sum(reasons.values())
    assert drops.num_rows == sum(reasons.values())


def test_choice_is_deterministic_order_free_and_stable() -> None:
    table = world()
    first, _, _ = run(table, ONE_GROUP)
    shuffled, _, _ = run(table.take(list(range(table.num_rows))[::-1]), ONE_GROUP)
    assert first.column("id").to_pylist() == shuffled.column("id").to_pylist()
    small, _, _ = run(table, dataclasses.replace(ONE_GROUP, cpt_to_it_ratio=0.5))
    chosen = lambda t: {r["id"] for r in t.to_pylist() if r["kind"] == "cpt"}  # noqa: E731
    assert chosen(small) < chosen(first)  # a record chosen at ratio 0.5 stays chosen at 1.0
    other_seed, _, _ = run(table, dataclasses.replace(ONE_GROUP, seed=1))
    assert chosen(other_seed) != chosen(first)


def test_weights_budgets_and_balance() -> None:
    p = dataclasses.replace(ONE_GROUP, cpt_to_it_ratio=None, unit="records", source_weights={"it_c": 2.0, "s": 0.0})
    records, _, metrics = run(world(), p)
    it_c = [r for r in records.to_pylist() if r["source"] == "it_c"]
    assert len(it_c) == 80 and len({r["id"] for r in it_c}) == 80 and metrics["copies"] == 40
    assert metrics["dropped"]["mixture.weighted_out"] == 200  # every CPT record of source s
    budget = dataclasses.replace(p, source_weights={}, budgets={"it_c": 10})
    records, _, metrics = run(world(), budget)
    assert sum(r["source"] == "it_c" for r in records.to_pylist()) == 10
    assert metrics["dropped"]["mixture.over_budget"] == 30
    balanced = dataclasses.replace(p, source_weights={}, groups=[GroupParams("all", ["concepts", "reasoning"])])
    balanced = dataclasses.replace(balanced, balance_capabilities=True, budgets={"it_r": 15})
    it = [r["capability"] for r in groups(run(world(), balanced)[0])["all"] if r["kind"] == "it"]
    assert it.count("concepts") == it.count("reasoning") == 15


def test_first_group_listing_a_capability_wins() -> None:
    p = dataclasses.replace(P, groups=[GroupParams("a", ["concepts"]), GroupParams("b", ["concepts", "reasoning"])])
    by = groups(run(world(), p)[0])
    assert {r["capability"] for r in by["b"]} == {"reasoning"}


def test_preference_prompts_are_training_instructions_with_their_own_ids() -> None:
    p = dataclasses.replace(ONE_GROUP, preference=dataclasses.replace(P.preference, max_prompts=25))
    records, _, metrics = run(world(), p)
    prefs = groups(records)["preference"]
    assert len(prefs) == 25 == metrics["preference_prompts"]
    assert {(r["kind"], r["capability"], r["split"]) for r in prefs} == {("it", "reasoning", "train")}
    assert records.num_rows == len(set(records.column("id").to_pylist()))


def test_base_set_takes_general_training_records_under_its_own_ids() -> None:
    records, _, metrics = run(world(), ONE_GROUP)
    base = groups(records)["base"]
    assert [(r["source"], r["capability"]) for r in base] == [("gen", "general")]
    assert json.loads(base[0]["metadata"])["mixture"]["role"] == "base" and metrics["base"]["records"] == 1
    trained = {json.loads(r["metadata"])["mixture"]["role"] for r in groups(records)["g1"]}
    assert trained == {"train"}


def test_main_writes_stage_outputs(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", world().to_pylist())
    metrics = run_main(mixture.main, tmp_path, project(tmp_path), [inputs], "mixture")
    assert metrics["kept"] > 0 and (tmp_path / "mixture" / "drops.parquet").exists()
