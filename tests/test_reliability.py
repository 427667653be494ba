"""Reliability: hostile input through every data stage, a stage killed midway, and what must never run or leak.

The hostile corpus is added to the tiny world as extra sources; `dvc repro audit` then runs ingest, every curation
stage, the mixture, the tokenizer, pack and the audit over it. Each bad row must be rejected with its file, line
and reason, the good ones must go on, and the audit's id accounting (every id kept or dropped exactly once, stage
after stage) must hold. RELIABILITY.md is the table of what these tests try.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curation.pipeline import SCRATCH
from tests.conftest import REPO, commit_all, copy_repo, run
from tests.test_pipeline import TINY_WORLD


BIG_MB = 50
KILL_STEPS = 6
GOOD = ("Net interest income at Harbor Bank rose 4% in 2023 as deposit costs lagged the rise in loan yields, while "
        "provisions for credit losses fell and the efficiency ratio improved to 58 percent. ")  # fmt: skip
USER, BOT = {"role": "user", "content": "What is EBITDA?"}, {"role": "assistant", "content": "Earnings before tax."}


def jsonl(rows: list[object]) -> bytes:
    """Rows as JSONL lines; a bytes row is written as is (the hostile ones)."""
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def hostile_sources(folder: Path) -> tuple[list[dict], dict[tuple[str, int], str], dict[str, int]]:
    """Writes the hostile files; returns their ingest sources, the expected rejects {(file, line): reason}, and
    how many rows of each file ingest must keep."""
    folder.mkdir(parents=True)
    cpt = [
        {"text": GOOD * 3},  # 1
        b"\xff\xfe not utf-8 at all",  # 2
        b'{"text": "a truncated line',  # 3
        ("[" * 100_000 + "]" * 100_000).encode(),  # 4 nested too deeply for the parser
        {"text": ""},  # 5
        {"text": " \t\n  "},  # 6
        {"text": ["a", "list"]},  # 7
        {"text": None},  # 8
        {"text": f"NUL bytes\u0000 inside a filing. {GOOD * 2}\u0000"},  # 9 kept: clean removes the NULs
        {"id": "dup", "text": f"First filing. {GOOD * 2}"},  # 10 the same source id twice: two records
        {"id": "dup", "text": f"Second filing. {GOOD * 2}"},  # 11
        {"text": GOOD * (BIG_MB * 2**20 // len(GOOD))},  # 12 one 50 MB document
        {"text": GOOD * 3},  # 13 an exact repeat of line 1: dedup's job
        b'{"text": "ok", "metadata": [1]}',  # 14
        b"[1, 2, 3]",  # 15
    ]
    it = [
        {"messages": [USER, BOT]},  # 1
        {"messages": [USER, {"role": "robot", "content": "beep"}]},  # 2 a role no template knows
        {"messages": [USER]},  # 3 no assistant turn
        {"messages": [BOT]},  # 4 no user turn
        {"messages": [USER, {"role": "assistant", "content": 7}]},  # 5 content not a string
        {"prompt_only": "no messages at all"},  # 6
    ]
    ev = [
        {"messages": [USER], "answer": "Earnings before interest."},  # 1
        {"messages": [USER]},  # 2 no answer
        {"messages": [USER], "answer": None},  # 3
        {"messages": [USER], "answer": "   "},  # 4 a blank answer
        {"messages": [USER, BOT], "answer": "x"},  # 5 ends on the assistant: nothing left to ask
    ]
    (folder / "cpt.jsonl").write_bytes(jsonl(cpt))
    (folder / "it.jsonl").write_bytes(jsonl(it))
    (folder / "eval.jsonl").write_bytes(jsonl(ev))
    table = pa.table({"text": pa.array([["a"], ["b", "c"]], pa.list_(pa.string())), "n": pa.array([1, 2])})
    pq.write_table(table, folder / "wrong_types.parquet")  # a column of the wrong type: every row rejected
    base = {"split": "train", "language": "en", "license": "test", "fields": {}, "templates": {}, "options": {},
            "max_rows": None}  # fmt: skip
    sources = [
        {**base, "name": "hostile_cpt", "path": str(folder / "cpt.jsonl"), "format": "jsonl", "kind": "cpt",
         "capability": "concepts"},
        {**base, "name": "hostile_types", "path": str(folder / "wrong_types.parquet"), "format": "parquet",
         "kind": "cpt", "capability": "concepts"},
        {**base, "name": "hostile_it", "path": str(folder / "it.jsonl"), "format": "jsonl", "kind": "it",
         "capability": "tasks"},
        {**base, "name": "hostile_eval", "path": str(folder / "eval.jsonl"), "format": "jsonl", "kind": "eval",
         "capability": "tasks", "split": "eval"},
    ]  # fmt: skip
    rejects = {
        **{("cpt.jsonl", n): f"ingest.{r}" for n, r in [(2, "undecodable_bytes"), (3, "malformed_json"),
           (4, "malformed_json"), (5, "empty_text"), (6, "empty_text"), (7, "wrong_type"), (8, "missing_field"),
           (14, "wrong_type"), (15, "not_an_object")]},
        ("wrong_types.parquet", 1): "ingest.wrong_type",
        ("wrong_types.parquet", 2): "ingest.wrong_type",
        **{("it.jsonl", n): "ingest.bad_messages" for n in (2, 3, 4, 5)},
        ("it.jsonl", 6): "ingest.missing_field",
        ("eval.jsonl", 2): "ingest.missing_field",
        ("eval.jsonl", 3): "ingest.missing_field",
        ("eval.jsonl", 4): "ingest.empty_answer",
        ("eval.jsonl", 5): "ingest.bad_messages",
    }  # fmt: skip
    kept = {"cpt.jsonl": 6, "wrong_types.parquet": 0, "it.jsonl": 1, "eval.jsonl": 1}
    return sources, rejects, kept


@pytest.fixture(scope="session")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """The tiny world plus the hostile sources, after `dvc repro audit` (every data stage, no training)."""
    root = copy_repo(tmp_path_factory.mktemp("hostile"), skip_data=True)
    sources, rejects, kept = hostile_sources(root / "hostile")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["world"].update(TINY_WORLD)
    params["ingest"]["sources"] += sources
    params["base"]["train"].update(max_steps=KILL_STEPS, save_steps=2)  # for the killed training run
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(root, "hostile")
    run(["dvc", "repro", "--quiet", "audit"], root)
    return root, rejects, kept


def query(root: Path, sql: str) -> list[tuple]:
    cwd = Path.cwd()
    os.chdir(root)  # catalog views name their Parquet relative to the project root
    try:
        with duckdb.connect("data/catalog.duckdb", read_only=True) as con:
            return con.execute(sql).fetchall()
    finally:
        os.chdir(cwd)


def test_every_hostile_row_is_rejected_with_file_line_and_reason(hostile_project: tuple[Path, dict, dict]) -> None:
    root, rejects, kept = hostile_project
    rows = query(root, "SELECT file, line, reason, detail FROM ingest_drops WHERE source LIKE 'hostile%'")
    got = {(Path(f).name, line): reason for f, line, reason, _ in rows}
    assert got == rejects
    assert all(detail.startswith(f"{f} line {line}: ") for f, line, _, detail in rows)  # the file and the line
    counts = dict(query(root, "SELECT source, count(*) FROM ingest WHERE source LIKE 'hostile%' GROUP BY source"))
    names = {"cpt.jsonl": "hostile_cpt", "it.jsonl": "hostile_it", "eval.jsonl": "hostile_eval"}
    assert counts == {names[f]: n for f, n in kept.items() if n}


def test_the_good_rows_go_on_and_no_record_is_lost(hostile_project: tuple[Path, dict, dict]) -> None:
    root, _, _ = hostile_project
    audit = json.loads((root / "data/metrics/audit.json").read_text())
    assert audit["accounting"] and all(v == {"missing": 0, "twice": 0, "unknown": 0}
                                       for v in audit["accounting"].values())  # fmt: skip
    for stage in ("ingest", "clean", "language", "quality", "domain", "dedup", "decontam", "mixture", "pack"):
        m = json.loads((root / f"data/metrics/{stage}.json").read_text())
        assert m["in"] == m["kept"] + sum(m["dropped"].values()), stage
    # both rows with the source id "dup" are records of their own; the source id stays in metadata
    dup = query(root, "SELECT id, split_part(text, ' ', 1) FROM ingest WHERE metadata->>'$.id' = 'dup'")
    assert len({i for i, _ in dup}) == 2 and sorted(w for _, w in dup) == ["First", "Second"]
    assert query(root, "SELECT count(*) FROM clean WHERE contains(text, chr(0))") == [(0,)]
    assert query(root, "SELECT count(*) FROM clean WHERE source = 'hostile_cpt' AND text LIKE 'NUL bytes%'") == [(1,)]
    big = query(root, f"SELECT reason FROM quality_drops WHERE source = 'hostile_cpt' AND length(text) > {2**20}")
    assert big == [("quality.too_many_words",)]
    stages = ("clean", "language", "quality", "domain", "dedup", "decontam")
    drops = " UNION ALL ".join(f"SELECT id, reason FROM {s}_drops" for s in stages)
    fate = query(root, f"SELECT i.id, d.reason, k.id IS NOT NULL FROM ingest i LEFT JOIN ({drops}) d USING (id) "
                       "LEFT JOIN decontam k USING (id) WHERE i.source LIKE 'hostile%'")  # fmt: skip
    assert len(fate) == len({i for i, _, _ in fate})  # no record dropped twice
    assert all((reason is None) == kept for _, reason, kept in fate)  # kept to the end, or dropped with a reason


def stage_cmd(root: Path, stage: str) -> list[str]:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()


def test_a_killed_curation_stage_reruns_to_the_same_bytes(hostile_project: tuple[Path, dict, dict]) -> None:
    """SIGKILL the quality stage mid-run (it reads the 50 MB document), then let `dvc repro` finish it."""
    root, _, _ = hostile_project
    out = root / "data/quality"
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    metrics = root / "data/metrics/quality.json"
    metrics.unlink()
    proc = subprocess.Popen(stage_cmd(root, "quality"), cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / SCRATCH).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the executor has started: the stage is midway
    assert proc.poll() is None, "the stage ended before it could be killed; the test did not interrupt it"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not metrics.exists() and (out / SCRATCH).exists()  # killed midway: partial output, no metrics
    run(["dvc", "repro", "--quiet", "audit"], root)
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()} == before
    assert json.loads(run(["dvc", "status", "--json", "audit"], root)) == {}  # audit and every stage before it


def test_a_killed_training_stage_resumes_from_its_last_checkpoint(hostile_project: tuple[Path, dict, dict]) -> None:
    """SIGKILL `dvc repro base` once a checkpoint exists; the next `dvc repro` resumes there and finishes."""
    root, _, _ = hostile_project
    checkpoint = root / "data/checkpoints/base/checkpoint-2/trainer_state.json"
    proc = subprocess.Popen(["dvc", "repro", "--quiet", "base"], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "training ended before it could be killed; the test did not interrupt it"
    time.sleep(0.5)  # let the checkpoint's last file land: a torn checkpoint is the library's to skip, not ours
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (root / "data/metrics/base.json").exists()
    run(["dvc", "repro", "--quiet", "base"], root)
    train = json.loads((root / "data/metrics/base.json").read_text())["train"]
    assert train["resumed_from_step"] >= 2 and train["steps"] == KILL_STEPS
    assert (root / "data/base/model.safetensors").is_file()


# --- safety: nothing user-supplied is unpickled or runs code -------------------------------------------------------


def calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def source_files() -> list[Path]:
    return sorted(p for pkg in ("curation", "training", "evaluation") for p in (REPO / pkg).rglob("*.py"))


def test_no_pickle_and_no_remote_code() -> None:
    """No module imports pickle; no call passes trust_remote_code other than False, torch.load without
    weights_only, or loads a causal LM without use_safetensors=True."""
    problems = []
    for path in source_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib") for n in names):
                    problems.append(f"{path}:{node.lineno} imports a pickle library")
        for call in calls(tree):
            for kw in call.keywords:
                if kw.arg == "trust_remote_code" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    problems.append(f"{path}:{call.lineno} trust_remote_code is not False")
            name = ast.unparse(call.func)
            given = {k.arg: ast.unparse(k.value) for k in call.keywords}
            if name.endswith("ModelForCausalLM.from_pretrained") and given.get("use_safetensors") != "True":
                problems.append(f"{path}:{call.lineno} loads a model without use_safetensors=True")
            if name == "torch.load" and "weights_only" not in {k.arg for k in call.keywords}:
                problems.append(f"{path}:{call.lineno} {name} without weights_only")
    assert not problems, "\n".join(problems)
