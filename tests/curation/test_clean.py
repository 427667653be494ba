from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from curation import clean
from curation.clean import Cleaner, CleanParams
from curation.config import load_params
from curation.io import read_records
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input


P = load_params("clean", CleanParams, PARAMS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Revenue rose 5% to $1.2\u00a0billion.", "Revenue rose 5% to $1.2 billion."),  # NBSP is whitespace
        ("The CEOâ€™s caf\u00c3\u00a9 plan", "The CEO's café plan"),
        ("a  b\t\tc \n\n\n\n\nd", "a b c\n\nd"),
        ("Net debt fell.\nAll rights reserved.\nCopyright 2023 Acme", "Net debt fell."),
        ("The rights issue was reserved for all holders.", "The rights issue was reserved for all holders."),
    ],
)
def test_cleaner(text: str, expected: str) -> None:
    assert Cleaner(P)(text).text == expected


def test_cleaner_logs_removed_lines_and_is_idempotent() -> None:
    cleaner = Cleaner(P)
    result = cleaner("Profit grew.\nSubscribe to our newsletter today\nClick here to read more")
    assert result.removed_lines == ["Subscribe to our newsletter today", "Click here to read more"]
    assert cleaner(result.text).text == result.text
    assert Cleaner(dataclasses.replace(P, boilerplate_patterns=[]))("Click here to x").text == "Click here to x"


def records() -> list[dict]:
    turns = [
        {"role": "user", "content": "Define  EBITDA?\nAll rights reserved."},
        {"role": "assistant", "content": "x"},
    ]
    return [
        make_record(
            "Margins improved.\nAll rights reserved.", metadata={"boilerplate_lines": ["All rights reserved."]}
        ),
        make_record("caf\u00c3\u00a9 sales", metadata={"mojibake": True, "boilerplate_lines": []}),
        make_record("Subscribe to our newsletter"),  # nothing left
        make_record(kind="it", messages=turns),
        make_record(
            kind="it", messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "\u00a0 "}]
        ),
    ] + [make_record(f"Document number {i} about revenue.") for i in range(20)]


def test_stage_books_balance_and_drops_keep_the_record(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records())
    metrics = run_main(clean.main, tmp_path, project(tmp_path), [inputs], "clean")
    assert metrics["in"] == 25 == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"] == {"clean.empty_after_cleaning": 2}
    assert metrics["truth"]["boilerplate_recall"] == 1.0 and metrics["truth"]["mojibake_fixed_rate"] == 1.0
    kept = read_records([tmp_path / "clean"]).to_pylist()
    conversation = next(r for r in kept if r["kind"] == "it")
    assert conversation["messages"][0]["content"] == "Define EBITDA?"
    assert json.loads(conversation["metadata"])["clean"]["removed_lines"] == ["All rights reserved."]
    with duckdb.connect(str(tmp_path / "catalog.duckdb")) as con:
        dropped = con.execute("SELECT reason, kind, raw FROM clean_drops ORDER BY kind").fetchall()
    assert dropped == [("clean.empty_after_cleaning", "cpt", ""), ("clean.empty_after_cleaning", "it", "q\n\n")]


def test_outputs_do_not_depend_on_task_count_and_reruns_are_identical(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records(), rows_per_shard=4)  # 7 input shards

    def digest(name: str, tasks: int) -> str:
        params = project(tmp_path, executor={"tasks": tasks, "workers": 1})
        run_main(clean.main, tmp_path, params, [inputs], name)
        files = sorted((tmp_path / name).iterdir())
        return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()

    assert digest("one", 1) == digest("three", 3) == digest("again", 1)
