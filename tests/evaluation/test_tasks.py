"""The task registry: every shipped task loads, its oracle scores 100% and a shuffle of its answers scores chance."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from pathlib import Path
from statistics import mean

import pytest
import yaml

from curation.config import ConfigError, load_params
from curation.world import WorldParams
from evaluation.evaluate import score_task
from evaluation.metrics import extract, score
from evaluation.registry import TASKS_DIR, TaskSpec, items, load_task, load_tasks
from tests.conftest import PARAMS
from tests.realdata import DATA, require


NAMES = sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))
FINTRAIN = [n for n in NAMES if n.startswith("fintrain_")]
REAL = [n for n in NAMES if n not in FINTRAIN]
# every real-data task, with its item count on ../shared/data: a change of a task's query shows here
REAL_ITEMS = {"cfa_easy": 1032, "convfinqa": 418, "fin_ner": 980, "finqa": 490, "fiqa_sa": 233, "fpb": 2264,
              "headlines": 10260, "tfns": 2388}  # fmt: skip


def test_every_task_file_loads_and_fintrain_covers_each_capability_with_similar_and_novel_tasks() -> None:
    specs = load_tasks(["*"])
    assert [s.task for s in specs] == NAMES
    assert len(FINTRAIN) == 14
    groups = defaultdict(set)
    for spec in load_tasks(["fintrain_*"]):
        groups[str(spec.capability)].add(spec.group)
    assert groups == {
        c: {"similar", "novel"} for c in ("concepts", "general", "instruction_following", "reasoning", "tasks")
    }


def test_fintrain_tasks_hold_every_world_evaluation_item_once(curated: Path) -> None:
    p = load_params("world", WorldParams, PARAMS)
    ids = [i.id for spec in load_tasks(["fintrain_*"]) for i in items(spec, {"curated": str(curated)})]
    assert len(ids) == len(set(ids)) == sum(dataclasses.asdict(p.eval).values())


def chance(spec: TaskSpec, targets: list[str], references: list[str]) -> float:
    """The expected score of a uniformly random permutation of the targets.

    An item metric's: the mean over (target, reference) pairs (all of them, or 400 x 400 for a large task). Macro-F1's:
    1/K for K classes, since a class of share p gets precision and recall p under a permutation.
    """
    if spec.metrics[0] == "macro_f1":
        return 1 / len(set(references))
    options = spec.extract.options or {}
    sample = random.Random(1).sample(range(len(targets)), min(len(targets), 400))
    extracted = [extract(targets[k], spec.extract.kind, **options) for k in sample]
    pairs = [(e, references[k]) for k in sample for e in extracted]
    item_scores, _ = score(
        [e for e, _ in pairs], [r for _, r in pairs], spec.metrics[0], **(spec.metric_options or {})
    )
    return mean(item_scores)


def test_real_data_tasks_cover_the_issue_list_with_similar_and_novel_tasks() -> None:
    specs = {s.task: s for s in load_tasks(REAL)}
    assert set(specs) == set(REAL_ITEMS)
    assert {s.group for s in specs.values()} == {"similar", "novel"}
    assert all(s.data.path.startswith("{shared}/") for s in specs.values())  # read in place, never copied in


@pytest.mark.parametrize("name", NAMES)
def test_gold_answers_score_100_and_shuffled_answers_score_chance(name: str, curated: Path) -> None:
    spec = load_task(TASKS_DIR / f"{name}.yaml")
    if name in REAL:
        require(DATA / spec.data.path.removeprefix("{shared}/"))
    task_items = items(spec, {"curated": str(curated), "shared": str(DATA)})
    if name in REAL:
        assert len(task_items) == REAL_ITEMS[name]
        assert len({i.id for i in task_items}) == len(task_items)
    targets = [i.target for i in task_items]
    _, oracle = score_task(spec, task_items, targets)
    assert oracle["unparsed"] == 0
    assert all(oracle[m] == pytest.approx(1.0) for m in spec.metrics), oracle

    shuffled = random.Random(0).sample(targets, len(targets))
    _, got = score_task(spec, task_items, shuffled)
    expected = chance(spec, targets, [i.reference for i in task_items])
    spread = (expected * (1 - expected) / len(targets)) ** 0.5
    assert abs(got["score"] - expected) <= 3 * spread + 0.05, (got["score"], expected)
    assert expected < 0.75  # a task a shuffle nearly passes measures nothing


def test_unparseable_outputs_score_zero_and_are_counted(curated: Path) -> None:
    spec = load_task(TASKS_DIR / "fintrain_multiple_choice.yaml")
    task_items = items(spec, {"curated": str(curated)})
    loose = [f"The answer is {i.reference}." for i in task_items]  # right letter, wrong format: FinDAP's CFA rule
    table, metrics = score_task(spec, task_items, loose)
    assert metrics["unparsed"] == len(task_items) and metrics["score"] == 0.0
    assert table.column("extracted").null_count == len(task_items)


def write_task(folder: Path, **changes: object) -> Path:
    data = yaml.safe_load((TASKS_DIR / "fintrain_sentiment.yaml").read_text()) | changes
    path = folder / f"{data['task']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_bad_task_file_names_the_file_and_every_problem(tmp_path: Path) -> None:
    path = write_task(tmp_path, metrics=["acuracy"], extract={"kind": "lable"}, max_new_token=8)
    with pytest.raises(ConfigError) as err:
        load_task(path)
    assert str(path) in str(err.value) and "max_new_token" in str(err.value) and "'max_new_tokens'" in str(err.value)
    path = write_task(tmp_path, metrics=["acuracy"], extract={"kind": "lable"})
    with pytest.raises(ConfigError, match=r"(?s)did you mean 'label'.*did you mean 'accuracy'"):
        load_task(path)
    with pytest.raises(ConfigError, match=r"name the file fintrain_sentiment\.yaml"):
        load_task(path.rename(tmp_path / "other.yaml"))


def test_a_template_error_names_the_task_row_and_columns(tmp_path: Path, curated: Path) -> None:
    spec = load_task(write_task(tmp_path, prompt="{{ headline }}"))
    with pytest.raises(ConfigError, match=r"prompt fails on row 0 .*'headline' is undefined.*columns: id, kind"):
        items(spec, {"curated": str(curated)})
    with pytest.raises(ConfigError, match=r"evaluate\.paths lacks"):
        items(spec, {})
    with pytest.raises(ConfigError, match=r"no task in .* matches 'fintrain_sentimnt'; did you mean"):
        load_tasks(["fintrain_sentimnt"])


def test_tasks_read_plain_files_with_sql_and_reader_options(tmp_path: Path) -> None:
    (tmp_path / "phrases.txt").write_text(
        "Sales rose 5% .@positive\nThe plant closed .@negative\n", encoding="latin-1"
    )
    path = write_task(
        tmp_path,
        task="phrases",
        data={"path": "{root}/phrases.txt", "read_options": {"delim": "@", "header": False, "quote": "",
              "columns": {"sentence": "VARCHAR", "label": "VARCHAR"}, "encoding": "latin-1"},
              "where": "label <> 'neutral'"},
        prompt="Sentence: {{ sentence }}",
        reference="{{ label }}",
        target="{{ label }}",
    )  # fmt: skip
    got = items(load_task(path), {"root": str(tmp_path)})
    assert [(i.id, i.messages[-1]["content"], i.reference) for i in got] == [
        ("phrases-000000", "Sentence: Sales rose 5% .", "positive"),
        ("phrases-000001", "Sentence: The plant closed .", "negative"),
    ]
