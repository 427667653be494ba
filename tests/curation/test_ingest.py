from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from curation import ingest
from curation.config import load_params
from curation.ingest import IngestParams, SourceParams
from curation.io import read_records
from curation.schema import RECORD_SCHEMA
from tests.conftest import PARAMS


TEMPLATE = load_params("ingest", IngestParams, PARAMS).sources[0]


def source(path: Path, **changes: Any) -> SourceParams:
    return dataclasses.replace(TEMPLATE, name="s", path=str(path), **changes)


def run_one(src: SourceParams) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    table, rejects, metrics = ingest.run([src])
    return table.to_pylist(), rejects, metrics


def reasons(rejects: list[dict[str, Any]]) -> dict[int | None, str]:
    return {r["line"]: r["reason"] for r in rejects}


def test_jsonl_hostile_rows_each_rejected_with_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"text": "A good filing about revenue.", "metadata": {"is_spam": False}, "extra": 7}).encode(),
        b'{"text": "truncated',  # 2 malformed
        b"\xff\xfe not utf-8",  # 3 undecodable
        b"[1, 2]",  # 4 not an object
        json.dumps({"body": "no text field"}).encode(),  # 5 missing
        json.dumps({"text": 42.5}).encode(),  # 6 number is accepted as text
        json.dumps({"text": ["a", "list"]}).encode(),  # 7 wrong type
        json.dumps({"text": "   \n\t "}).encode(),  # 8 whitespace only
        b"",  # blank line: no row
        ("[" * 100_000 + "]" * 100_000).encode(),  # 10 nested too deeply
        json.dumps({"text": "x", "metadata": "not an object"}).encode(),  # 11 metadata wrong type
        json.dumps({"text": "A good filing about revenue."}).encode(),  # 12 exact repeat of line 1's text
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, rejects, metrics = run_one(source(path))

    assert reasons(rejects) == {
        2: "ingest.malformed_json",
        3: "ingest.undecodable_bytes",
        4: "ingest.not_an_object",
        5: "ingest.missing_field",
        7: "ingest.wrong_type",
        8: "ingest.empty_text",
        10: "ingest.malformed_json",
        11: "ingest.wrong_type",
    }
    assert all(r["detail"].startswith(f"{path} line {r['line']}: ") for r in rejects)
    assert rejects[1]["raw"] == "\\xff\\xfe not utf-8"
    assert metrics["in"] == 11 == metrics["kept"] + sum(metrics["dropped"].values())
    assert [r["text"] for r in records] == ["A good filing about revenue.", "42.5", "A good filing about revenue."]
    assert len({r["id"] for r in records}) == 3  # the repeat keeps its own id; dedup will find it
    first = json.loads(records[0]["metadata"])
    assert first == {"extra": 7, "is_spam": False}


def conversations_file(tmp_path: Path, rows: list[Any]) -> Path:
    path = tmp_path / "it.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_instruction_conversations_are_validated(tmp_path: Path) -> None:
    user, bot = {"role": "user", "content": "Define EBITDA."}, {"role": "assistant", "content": "Earnings before..."}
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."}, user, bot]},
        {"messages": [user]},  # no assistant answer
        {"messages": [user, {"role": "robot", "content": "beep"}]},
        {"messages": [bot]},  # no user turn
        {"messages": [user, {"role": "assistant", "content": "  "}]},
        {"messages": "just a string"},  # a prompt with no answer
        {"messages": []},
    ]
    records, rejects, _ = run_one(source(conversations_file(tmp_path, rows), kind="it"))
    assert len(records) == 1 and records[0]["messages"][0]["role"] == "system"
    assert [r["reason"] for r in rejects] == ["ingest.bad_messages"] * 6
    assert "last turn is user, expected assistant" in rejects[0]["detail"]
    assert "turn 1 must be" in rejects[1]["detail"]


def test_prompt_response_fields_build_a_turn(tmp_path: Path) -> None:
    rows = [{"instruction": "Classify: stocks fell.", "output": "negative", "id": "u1"}, {"instruction": "no output"}]
    src = source(conversations_file(tmp_path, rows), kind="it", fields={"prompt": "instruction", "response": "output"})
    records, rejects, _ = run_one(src)
    assert records[0]["messages"] == [
        {"role": "user", "content": "Classify: stocks fell."},
        {"role": "assistant", "content": "negative"},
    ]
    assert json.loads(records[0]["metadata"]) == {"id": "u1"}  # their id is kept, ours is content-derived
    assert [r["reason"] for r in rejects] == ["ingest.missing_field"]


def test_eval_items_need_an_answer(tmp_path: Path) -> None:
    rows = [{"question": "2+2?", "answer": 4}, {"question": "Capital of France?"}, {"question": "x", "answer": None}]
    src = source(conversations_file(tmp_path, rows), kind="eval", split="eval", fields={"prompt": "question"})
    records, rejects, _ = run_one(src)
    assert [(r["messages"][-1]["content"], r["answer"]) for r in records] == [("2+2?", "4")]
    assert [r["reason"] for r in rejects] == ["ingest.missing_field", "ingest.missing_field"]


def test_csv_reader(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_bytes(b'body;label\n"Multi-line\nfiling text";pos\nshort row\nbad \xff byte;neg\nplain;neu\n')
    records, rejects, metrics = run_one(
        source(path, format="csv", fields={"text": "body"}, options={"delimiter": ";"})
    )
    assert [r["text"] for r in records] == ["Multi-line\nfiling text", "plain"]
    assert [json.loads(r["metadata"]) for r in records] == [{"label": "pos"}, {"label": "neu"}]
    assert reasons(rejects) == {4: "ingest.malformed_csv", 5: "ingest.undecodable_bytes"}
    assert metrics["in"] == 4


def test_parquet_file_and_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["a b", None], "n": [1, 2]}), folder / "part-1.parquet")
    pq.write_table(pa.table({"text": ["c d"], "n": [3]}), folder / "part-2.parquet")
    records, rejects, _ = run_one(source(folder, format="parquet"))
    assert [r["text"] for r in records] == ["a b", "c d"]
    assert [(r["file"].endswith("part-1.parquet"), r["line"], r["reason"]) for r in rejects] == [
        (True, 2, "ingest.missing_field")
    ]


def test_text_folder_one_document_per_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("First document.")
    (tmp_path / "sub" / "b.txt").write_text("Second document.")
    (tmp_path / "c.txt").write_bytes(b"bad \xc3\x28 bytes")
    (tmp_path / "ignored.md").write_text("not matched")
    records, rejects, _ = run_one(source(tmp_path, format="text"))
    assert sorted(r["text"] for r in records) == ["First document.", "Second document."]
    assert [(Path(r["file"]).name, r["reason"]) for r in rejects] == [("c.txt", "ingest.undecodable_bytes")]


def test_hugging_face_local_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = {"question": ["What is duration?", "What is beta?"], "answer": ["Rate sensitivity.", "Market risk."]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    src = source(tmp_path / "saved", format="hf", kind="eval", split="eval", fields={"prompt": "question"})
    records, rejects, _ = run_one(src)
    assert [r["answer"] for r in records] == rows["answer"] and rejects == []

    (tmp_path / "raw").mkdir()  # a data folder, read by `load_dataset` without any network
    pq.write_table(pa.table(rows), tmp_path / "raw" / "train.parquet")
    records, _, _ = run_one(dataclasses.replace(src, path=str(tmp_path / "raw")))
    assert [r["answer"] for r in records] == rows["answer"]


def test_missing_path_and_duplicate_names_fail_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"fix its path in params\.yaml"):
        ingest.run([source(tmp_path / "nope.jsonl")])
    path = conversations_file(tmp_path, [{"text": "x"}])
    with pytest.raises(ValueError, match="names must be unique, repeated: s"):
        ingest.run([source(path), source(path)])


def test_ids_are_deterministic_across_runs(tmp_path: Path) -> None:
    path = conversations_file(tmp_path, [{"text": f"doc {i}"} for i in range(50)] + [{"text": "doc 1"}])
    first, _, _ = run_one(source(path))
    second, _, _ = run_one(source(path))
    assert [r["id"] for r in first] == [r["id"] for r in second]
    assert len({r["id"] for r in first}) == 51


def test_main_writes_records_drops_metrics_and_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = conversations_file(tmp_path, [{"text": "alpha"}, {"text": ""}, {"text": "beta"}])
    params = yaml.safe_load(PARAMS.read_text())
    params["ingest"]["sources"] = [TypeAdapter(SourceParams).dump_python(source(path), mode="json")]
    params["io"] = {**params["io"], "catalog": "data/catalog.duckdb", "rows_per_shard": 1}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--output", "data/ingest", "--metrics", "data/metrics/ingest.json"])

    assert sorted(p.name for p in Path("data/ingest").iterdir()) == [
        "drops.parquet",
        "records-00000.parquet",
        "records-00001.parquet",
    ]
    table = read_records([Path("data/ingest")])
    assert table.schema == RECORD_SCHEMA and table.column("id").to_pylist() == sorted(table.column("id").to_pylist())
    metrics = json.loads(Path("data/metrics/ingest.json").read_text())
    assert (metrics["in"], metrics["kept"], metrics["dropped"]) == (3, 2, {"ingest.empty_text": 1})
    with duckdb.connect("data/catalog.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest").fetchone() == (2,)
        assert con.execute("SELECT reason, line FROM ingest_drops").fetchall() == [("ingest.empty_text", 2)]


def test_templates_compose_columns_and_metadata_and_a_failing_one_rejects_the_row(tmp_path: Path) -> None:
    rows = [
        {"text": "Stocks fell.", "label": 0, "Price Up": "1"},
        {"text": "Stocks rose.", "label": 7, "Price Up": "0"},
    ]
    src = source(conversations_file(tmp_path, rows), kind="eval", split="eval",
                 templates={"prompt": "Sentiment of: {{ text }}", "answer": "{{ ['neg', 'pos'][label] }}",
                            "metadata.query": "{{ text }}", "metadata.up": "{{ row['Price Up'] }}"})  # fmt: skip
    records, rejects, _ = run_one(src)
    assert [(r["messages"][0]["content"], r["answer"]) for r in records] == [("Sentiment of: Stocks fell.", "neg")]
    meta = json.loads(records[0]["metadata"])
    assert (meta["query"], meta["up"], meta["label"]) == ("Stocks fell.", "1", 0)  # unused fields stay in metadata
    assert reasons(rejects) == {2: "ingest.template_error"} and "templates.answer" in rejects[0]["detail"]
    with pytest.raises(ValueError, match=r"templates\.title targets no column"):
        run_one(dataclasses.replace(src, templates={"title": "{{ text }}"}))
    with pytest.raises(ValueError, match="does not compile"):
        run_one(dataclasses.replace(src, templates={"prompt": "{{ text "}))


def test_max_rows_reads_only_the_first_rows(tmp_path: Path) -> None:
    path = conversations_file(tmp_path, [{"text": f"doc {i}"} for i in range(5)])
    records, _, metrics = run_one(source(path, max_rows=2))
    assert [r["text"] for r in records] == ["doc 0", "doc 1"] and metrics["sources"]["s"]["in"] == 2


def test_duckdb_reads_json_arrays_and_split_lines_through_sql(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"q": "Net change?", "table": [["a", "1"], ["b", "2"]], "answer": 1.5},
                                {"q": "Yes?", "table": [], "answer": "yes"}]))  # fmt: skip
    src = source(path, format="duckdb", kind="eval", split="eval",
                 templates={"prompt": "{% for r in table %}{{ r | join(' | ') }}\n{% endfor %}{{ q }}"},
                 options={"select": "q, \"table\", answer::VARCHAR AS answer", "where": "q != 'Yes?'"})  # fmt: skip
    records, _, _ = run_one(src)
    assert [(r["messages"][0]["content"], r["answer"]) for r in records] == [("a | 1\nb | 2\nNet change?", "1.5")]
    lines = tmp_path / "fpb.txt"
    lines.write_text("Profit rose @ 5% this year@positive\nSales fell@negative\n")
    split = {
        "from": "read_csv('{path}', delim='\t', header=false, quote='', columns={'l': 'VARCHAR'})",
        "select": "regexp_extract(l, '^(.*)@(\\w+)$', 1) AS s, regexp_extract(l, '@(\\w+)$', 1) AS label",
    }
    src = source(
        lines, format="duckdb", kind="eval", split="eval", fields={"prompt": "s", "answer": "label"}, options=split
    )
    records, _, _ = run_one(src)
    assert [(r["messages"][0]["content"], r["answer"]) for r in records] == [
        ("Profit rose @ 5% this year", "positive"), ("Sales fell", "negative")]  # fmt: skip
    (reject,) = run_one(source(tmp_path / "items.json", format="duckdb", options={"select": "nope"}))[1]
    assert reject["reason"] == "ingest.unreadable_file" and "nope" in reject["detail"]


def test_conll_sentences_with_their_entities(tmp_path: Path) -> None:
    path = tmp_path / "ner.txt"
    path.write_text("-DOCSTART- -X- O O\n\nApple NNP - I-ORG\nInc NNP - I-ORG\nhired VBD - O\nJohn NNP - I-PER\n"
                    "\nIn IN - O\nParis NNP - B-LOC\nLyon NNP - B-LOC\n")  # fmt: skip
    src = source(path, format="conll", kind="it", options={"columns": "token,pos,chunk,tag"},
                 templates={"prompt": "Entities in: {{ text }}",
                            "response": "ORG: {{ entities.get('ORG', []) | join(', ') or 'none' }}; "
                                        "LOC: {{ entities.get('LOC', []) | join(', ') or 'none' }}"})  # fmt: skip
    records, rejects, _ = run_one(src)
    assert not rejects
    assert [r["messages"][1]["content"] for r in records] == [
        "ORG: Apple Inc; LOC: none",
        "ORG: none; LOC: Paris, Lyon",
    ]
    assert records[0]["messages"][0]["content"] == "Entities in: Apple Inc hired John"


def test_reuters_stories_unescaped_and_a_bad_byte_rejects_only_its_story(tmp_path: Path) -> None:
    story = ('<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" NEWID="{id}">\n<DATE>26-FEB-1987</DATE>\n'
             '<TOPICS><D>cocoa</D></TOPICS><PLACES><D>usa</D></PLACES>\n<TEXT>&#2;\n<TITLE>COCOA {id}</TITLE>\n'
             '<BODY>Cocoa rose &lt;5 pct&gt; today.\n Reuter\n&#3;</BODY></TEXT>\n</REUTERS>\n')  # fmt: skip
    data = (
        b'<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + story.format(id=1).encode() + b'<REUTERS NEWID="2">\xfc</REUTERS>\n'
    )
    data += story.format(id=3).encode()
    (tmp_path / "reut2-000.sgm").write_bytes(data)
    src = source(tmp_path, format="reuters", templates={"text": "{{ title }}\n\n{{ body }}"})
    records, rejects, _ = run_one(src)
    assert [r["text"] for r in records] == [f"COCOA {i}\n\nCocoa rose <5 pct> today.\n Reuter" for i in (1, 3)]
    meta = json.loads(records[0]["metadata"])
    assert (meta["topics"], meta["places"], meta["lewissplit"], meta["newid"]) == (["cocoa"], ["usa"], "TRAIN", "1")
    assert [(r["reason"], r["line"]) for r in rejects] == [("ingest.undecodable_bytes", 11)]


def test_csv_join_makes_a_file_one_document(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(",speaker,sentence\n0,CHAIR,Good afternoon.\n1,CHAIR,Rates are unchanged.\n")
    (tmp_path / "b.csv").write_text(",speaker,sentence\n0,CHAIR,Hello.\n1,CHAIR\n")
    records, rejects, _ = run_one(
        source(tmp_path, format="csv", fields={"text": "sentence"}, options={"join": "sentence"})
    )
    assert [r["text"] for r in records] == ["Good afternoon.\nRates are unchanged."]
    assert [(r["reason"], r["line"]) for r in rejects] == [("ingest.malformed_csv", 3)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=30), st.just(b'{"text": "ok"}'), st.just(b'{"text": 1}')), max_size=12))
def test_any_bytes_give_one_record_or_one_reject_per_line(lines: list[bytes]) -> None:
    """Whatever the bytes, the JSONL reader never raises, and every non-blank line is kept or rejected once."""
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docs.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        records, rejects, metrics = run_one(source(path))
    nonblank = [i for i, line in enumerate(lines, start=1) if line.strip()]
    assert metrics["in"] == len(nonblank) == len(records) + len(rejects)
    assert {r["line"] for r in rejects} <= set(nonblank) and all(r["reason"].startswith("ingest.") for r in rejects)


TEXT_VALUES = st.one_of(st.none(), st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=40, deadline=None)
@given(st.lists(TEXT_VALUES, min_size=1, max_size=12), st.sampled_from(["string", "value", "list"]))
def test_any_parquet_text_column_gives_one_record_or_one_reject_per_row(values: list[Any], shape: str) -> None:
    """A `text` column of any type (strings, numbers, booleans, nulls, lists): every row kept or rejected once."""
    if shape == "string":
        column = pa.array([None if v is None else str(v) for v in values], pa.string())
    elif shape == "list":
        column = pa.array([None if v is None else [str(v)] for v in values], pa.list_(pa.string()))
    else:  # one Arrow type per column: the values' own if they share one, else all as strings
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            column = pa.array([None if v is None else str(v) for v in values])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docs.parquet"
        pq.write_table(pa.table({"text": column}), path)
        records, rejects, metrics = run_one(source(path, format="parquet"))
    assert metrics["in"] == len(values) == len(records) + len(rejects)
    assert sorted(r["line"] for r in rejects) == sorted({r["line"] for r in rejects})  # a row rejected once
    assert all(r["text"].strip() for r in records)
