"""FinTrain-mini (curation/world.py): determinism, counts, ground truth, planted relations and task correctness.

Most tests use a tiny world built from the shipped params with `dataclasses.replace`; properties that only show at
full size (no accidental near-duplicates among many documents of one company or concept, no eval query in training
text) use the default world. Similarity, program execution and n-gram overlap are recomputed here independently of
the module under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from curation import answers, world
from curation.answers import check_constraints
from curation.config import load_params
from curation.world import (
    CPT_SOURCES,
    EVAL_SOURCES,
    GROUND_TRUTH_KEYS,
    IT_SOURCES,
    SOURCES,
    WorldParams,
    generate,
    make_companies,
    manifest,
    write_world,
)
from tests.conftest import PARAMS


Rows = dict[str, list[dict[str, Any]]]
CAPABILITIES = ("concepts", "tasks", "reasoning", "instruction_following", "general")


def tiny(**changes: Any) -> WorldParams:
    """The shipped defaults scaled down (rates of planted relations raised so that each kind occurs)."""
    p = load_params("world", WorldParams, PARAMS)
    sizes = {"concepts": 40, "tasks": 45, "reasoning": 40, "instruction_following": 40, "general": 40}
    small = dataclasses.replace(
        p,
        n_companies=6,
        n_years=3,
        news_per_company=6,
        calls_per_company=2,
        n_glossary_docs=40,
        n_general=30,
        n_web_finance=40,
        n_web_general=20,
        n_nonenglish=30,
        n_spam=20,
        exact_dup_rate=0.1,
        near_dup_rate=0.1,
        figure_variant_rate=0.5,
        mojibake_rate=0.1,
        n_leaked_cpt=4,
        n_leaked_it=5,
        malformed_rows=4,
        it=dataclasses.replace(p.it, **sizes),
        eval=dataclasses.replace(p.eval, **dict.fromkeys(sizes, 20)),
    )
    return dataclasses.replace(small, **changes)


@pytest.fixture(scope="module")
def params() -> WorldParams:
    return tiny()


@pytest.fixture(scope="module")
def rows(params: WorldParams) -> Rows:
    return generate(params)


@pytest.fixture(scope="module")
def default_rows() -> Rows:
    return generate(load_params("world", WorldParams, PARAMS))


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word 5-grams over \\w+ tokens: deliberately a different tokenizer from the module's whitespace split."""
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def split_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b)


def by_id(rows: Rows) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["world_id"]: r for source in SOURCES for r in rows[source]}


def cpt_rows(rows: Rows) -> list[dict[str, Any]]:
    return [r for source in CPT_SOURCES for r in rows[source]]


def unplanted_finance(rows: Rows) -> list[dict[str, Any]]:
    return [
        r
        for r in cpt_rows(rows)
        if r["metadata"]["is_finance"]
        and not any(r["metadata"][k] for k in ("is_duplicate_of", "figure_variant_of", "leaked_from"))
    ]


def file_hashes(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def run_program(program: str) -> float:
    """An independent FinQA executor: `op(a, b)` steps separated by ', ', `#k` = result of step k."""
    results: list[float] = []
    for op, a, b in re.findall(r"(\w+)\(([^,()]+), ([^,()]+)\)", program):
        x, y = (results[int(t[1:])] if t.startswith("#") else float(t) for t in (a, b))
        results.append(
            {"add": x + y, "subtract": x - y, "multiply": x * y, "divide": x / y if y else float("nan")}[op]
        )
    return results[-1]


# --- determinism and files ------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path, params: WorldParams) -> None:
    for name, p in (("a", params), ("b", params), ("c", dataclasses.replace(params, seed=params.seed + 1))):
        rows = generate(p)
        write_world(rows, tmp_path / name, p.malformed_rows, manifest(rows, p))
    a, b, c = (file_hashes(tmp_path / name) for name in "abc")
    assert a == b
    assert sorted(a) == sorted([f"{s}.jsonl" for s in SOURCES] + ["manifest.json"])
    assert all(a[f"{s}.jsonl"] != c[f"{s}.jsonl"] for s in SOURCES)


def test_files_are_sorted_key_utf8_jsonl_with_malformed_lines_last(tmp_path: Path, params: WorldParams) -> None:
    rows = generate(params)
    write_world(rows, tmp_path, params.malformed_rows)
    for source in SOURCES:
        lines = (tmp_path / f"{source}.jsonl").read_bytes().split(b"\n")
        assert lines[-1] == b""
        n_bad = params.malformed_rows if source == "web" else 0
        good, bad = lines[: len(rows[source])], lines[len(rows[source]) : -1]
        assert len(bad) == n_bad
        for line, row in zip(good, rows[source], strict=True):
            assert json.loads(line.decode("utf-8")) == row
            assert line.decode("utf-8") == json.dumps(row, ensure_ascii=False, sort_keys=True)
        for line in bad:
            with pytest.raises(ValueError):  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
                json.loads(line.decode("utf-8"))
    assert any(b"\xff" in line for line in (tmp_path / "web.jsonl").read_bytes().split(b"\n"))


def test_main_writes_world_manifest_and_metrics(tmp_path: Path, params: WorldParams) -> None:
    data = yaml.safe_load(PARAMS.read_text())
    data["world"] = dataclasses.asdict(params)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(data))
    out, metrics_file = tmp_path / "world", tmp_path / "metrics" / "world.json"
    world.main(["--output", str(out), "--metrics", str(metrics_file), "--params", str(params_file)])
    metrics = json.loads(metrics_file.read_text())
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["params"] == dataclasses.asdict(params)
    assert {k: v for k, v in saved.items() if k != "params"} == metrics
    assert metrics["malformed_rows"] == params.malformed_rows
    for source in SOURCES:
        n_lines = (out / f"{source}.jsonl").read_bytes().count(b"\n")
        assert n_lines == metrics["files"][source] + (params.malformed_rows if source == "web" else 0)


def test_every_params_key_has_a_comment() -> None:
    text = PARAMS.read_text()
    section = text[text.index("\nworld:") + 1 :].split("\n\n")[0].splitlines()[1:]
    assert section and all("#" in line for line in section)
    fields = {f.name for f in dataclasses.fields(WorldParams)}
    assert {line.split(":")[0].strip() for line in section if line.startswith("  ") and line[2] != " "} == fields


# --- counts and shape -----------------------------------------------------------------------------------------


def test_counts_match_params(rows: Rows, params: WorldParams) -> None:
    p = params

    def originals(source: str, doc_type: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in rows[source]
            if not any(r["metadata"][k] for k in ("is_duplicate_of", "figure_variant_of", "leaked_from"))
            and (doc_type is None or r["metadata"]["doc_type"] == doc_type)
        ]

    n_filings = p.n_companies * p.n_years
    assert len(originals("filings")) == n_filings
    assert len(rows["filings"]) == n_filings + round(p.figure_variant_rate * n_filings)
    assert len(originals("news")) == p.n_companies * p.news_per_company
    assert len(rows["calls"]) == p.n_companies * p.calls_per_company
    assert len(originals("glossary")) == p.n_glossary_docs == len(rows["glossary"])
    assert len(rows["general"]) == p.n_general
    assert len(originals("web", "web_finance")) == p.n_web_finance
    assert len(originals("web", "web_general")) == p.n_web_general
    assert len(originals("web", "nonenglish")) == p.n_nonenglish
    assert len(originals("web", "spam")) == p.n_spam
    assert sum(bool(r["metadata"]["leaked_from"]) for r in rows["web"]) == p.n_leaked_cpt
    pool = [
        r
        for r in unplanted_finance(rows)
        if r["metadata"]["true_language"] == "en" and r["metadata"]["doc_type"] != "leak"
    ]
    kinds = Counter(r["metadata"]["duplicate_type"] for r in cpt_rows(rows))
    assert kinds["exact"] == round(p.exact_dup_rate * len(pool)) > 0
    assert kinds["near"] == round(p.near_dup_rate * len(pool)) > 0
    for cap in CAPABILITIES:
        leaked = sum(bool(r["metadata"]["leaked_from"]) for r in rows[f"it_{cap}"])
        assert len(rows[f"it_{cap}"]) == getattr(p.it, cap) + leaked
        assert len(rows[f"eval_{cap}"]) == getattr(p.eval, cap)
    assert sum(bool(r["metadata"]["leaked_from"]) for s in IT_SOURCES for r in rows[s]) == p.n_leaked_it
    counts = manifest(rows, p)
    assert counts["files"] == {s: len(rows[s]) for s in SOURCES}
    assert counts["labels"]["leaked_it"] == p.n_leaked_it and counts["labels"]["leaked_cpt"] == p.n_leaked_cpt
    assert counts["labels"]["spam"] == p.n_spam
    assert counts["labels"]["duplicate_exact"] == kinds["exact"]


def test_default_world_sizes_fit_the_pipeline_budget(default_rows: Rows) -> None:
    n_cpt = sum(len(default_rows[s]) for s in CPT_SOURCES)
    n_it = sum(len(default_rows[s]) for s in IT_SOURCES)
    assert 3000 <= n_cpt <= 5000
    assert 2000 <= n_it <= 4000
    assert all(60 <= len(default_rows[s]) <= 100 for s in EVAL_SOURCES)


def test_every_row_carries_ground_truth_and_the_right_shape(rows: Rows) -> None:
    ids = [r["metadata"]["world_id"] for s in SOURCES for r in rows[s]]
    assert len(ids) == len(set(ids))
    for source in SOURCES:
        for row in rows[source]:
            m = row["metadata"]
            assert set(GROUND_TRUTH_KEYS) <= set(m)
            assert m["world_id"].split("/")[0] == source
            assert isinstance(m["is_finance"], bool) and isinstance(m["is_spam"], bool)
            assert isinstance(m["mojibake"], bool) and isinstance(m["boilerplate_lines"], list)
            assert m["true_language"] in ("en", "de", "fr", "es")
            assert m["duplicate_type"] in (None, "exact", "near")
            assert (m["duplicate_type"] is None) == (m["is_duplicate_of"] is None)
            assert (m["duplicate_type"] == "near") == (m["near_dup_jaccard"] is not None)
            if source in CPT_SOURCES:
                assert set(row) == {"text", "metadata"} and row["text"].strip()
            elif source in IT_SOURCES:
                assert set(row) == {"messages", "metadata"} and m["task"]
                roles = [msg["role"] for msg in row["messages"]]
                assert roles[-2:] == ["user", "assistant"] and set(roles) <= {"system", "user", "assistant"}
                assert all(msg["content"].strip() for msg in row["messages"])
            else:
                assert set(row) == {"messages", "answer", "metadata"} and row["answer"].strip()
                assert [msg["role"] for msg in row["messages"]] == ["user"]
                assert m["group"] in ("similar", "novel") and m["mode"] in ("direct", "cot") and m["task"]
    spam = [r for r in rows["web"] if r["metadata"]["is_spam"]]
    assert spam and not any(r["metadata"]["is_finance"] for r in spam)
    assert {r["metadata"]["true_language"] for r in rows["web"]} == {"en", "de", "fr", "es"}
    assert not any(r["metadata"]["is_finance"] for r in rows["general"])


# --- planted relations ----------------------------------------------------------------------------------------


def test_references_point_to_existing_rows(rows: Rows) -> None:
    index = by_id(rows)
    for source in SOURCES:
        for row in rows[source]:
            m = row["metadata"]
            for key in ("is_duplicate_of", "figure_variant_of"):
                if m[key] is not None:
                    assert m[key] in index and m[key] != m["world_id"]
                    assert index[m[key]]["metadata"][key] is None  # originals are not copies themselves
                    assert index[m[key]]["metadata"]["is_finance"]
            if m["leaked_from"] is not None:
                assert m["leaked_from"].split("/")[0] in EVAL_SOURCES and m["leaked_from"] in index
    for row in cpt_rows(rows):
        m = row["metadata"]
        if m["duplicate_type"] is not None:
            assert m["world_id"].split("/")[0] == ("news" if m["is_duplicate_of"].startswith("news/") else "web")


def test_exact_and_near_copies(rows: Rows) -> None:
    index = by_id(rows)
    exact = [r for r in cpt_rows(rows) if r["metadata"]["duplicate_type"] == "exact"]
    near = [r for r in cpt_rows(rows) if r["metadata"]["duplicate_type"] == "near"]
    assert exact and near
    assert all(r["text"] == index[r["metadata"]["is_duplicate_of"]]["text"] for r in exact)
    for row in near:
        original = index[row["metadata"]["is_duplicate_of"]]["text"]
        assert row["text"] != original
        assert 0.85 <= jaccard(shingles(row["text"]), shingles(original)) <= 0.97
        stored = row["metadata"]["near_dup_jaccard"]
        assert stored == pytest.approx(jaccard(split_shingles(row["text"]), split_shingles(original)), abs=1e-4)


def test_figure_variants_differ_only_in_numbers(rows: Rows) -> None:
    index = by_id(rows)
    variants = [r for r in rows["filings"] if r["metadata"]["figure_variant_of"]]
    assert variants
    for row in variants:
        original = index[row["metadata"]["figure_variant_of"]]["text"]
        assert row["metadata"]["is_duplicate_of"] is None
        assert row["text"] != original
        assert re.sub(r"\d+", "0", row["text"]) == re.sub(r"\d+", "0", original)
        assert jaccard(shingles(row["text"]), shingles(original)) < 0.7
        assert jaccard(split_shingles(row["text"]), split_shingles(original)) < 0.7


def test_unplanted_finance_documents_are_not_near_duplicates(rows: Rows, default_rows: Rows) -> None:
    small = [shingles(r["text"]) for r in unplanted_finance(rows)]
    assert max(jaccard(a, b) for i, a in enumerate(small) for b in small[i + 1 :]) < 0.5
    docs = unplanted_finance(default_rows)
    sets = [shingles(r["text"]) for r in docs]
    rng = random.Random(0)
    pairs = [tuple(rng.sample(range(len(docs)), 2)) for _ in range(3000)]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)  # same company or concept: the hardest pairs
    for i, r in enumerate(docs):
        m = r["metadata"]
        if m.get("company") or m.get("concept"):
            groups[(m["doc_type"], m.get("company") or m["concept"])].append(i)
    pairs += [(i, j) for members in groups.values() for k, i in enumerate(members) for j in members[k + 1 :]]
    assert len(pairs) > 10_000
    assert max(jaccard(sets[i], sets[j]) for i, j in pairs) < 0.5


def test_mojibake_and_boilerplate_are_real_and_never_on_copies(rows: Rows) -> None:
    index = by_id(rows)
    involved = {
        x for r in cpt_rows(rows) for x in (r["metadata"]["is_duplicate_of"], r["metadata"]["figure_variant_of"]) if x
    }
    garbled = [r for r in cpt_rows(rows) if r["metadata"]["mojibake"]]
    framed = [r for r in cpt_rows(rows) if r["metadata"]["boilerplate_lines"]]
    assert garbled and framed
    for row in garbled + framed:
        m = row["metadata"]
        assert m["world_id"] not in involved and m["is_duplicate_of"] is None and m["figure_variant_of"] is None
    assert all(re.search("Ã|â€|Â", r["text"]) for r in garbled)
    assert not any(re.search("Ã|â€|Â", r["text"]) for r in cpt_rows(rows) if not r["metadata"]["mojibake"])
    for row in framed:
        lines = row["text"].split("\n")
        assert all(line in lines for line in row["metadata"]["boilerplate_lines"])
    assert index  # the rows above all exist


def test_leaked_eval_items_really_occur(rows: Rows) -> None:
    index = by_id(rows)
    web_leaks = [r for r in rows["web"] if r["metadata"]["leaked_from"]]
    it_leaks = [r for s in IT_SOURCES for r in rows[s] if r["metadata"]["leaked_from"]]
    assert web_leaks and it_leaks
    for row in web_leaks:
        item = index[row["metadata"]["leaked_from"]]
        prompt = item["messages"][-1]["content"]
        assert len(prompt.split()) >= 20
        assert prompt in row["text"] and item["answer"] in row["text"]
    for row in it_leaks:
        item = index[row["metadata"]["leaked_from"]]
        source = row["metadata"]["world_id"].split("/")[0]
        assert source == item["metadata"]["world_id"].split("/")[0].replace("eval_", "it_")
        assert item["messages"][-1]["content"] in row["messages"][-2]["content"]
        assert row["messages"][-1]["content"] == item["answer"]
    assert not {r["metadata"]["leaked_from"] for r in web_leaks} & {r["metadata"]["leaked_from"] for r in it_leaks}


def test_eval_prompts_are_held_out_from_training(rows: Rows) -> None:
    train = {r["messages"][-2]["content"] for s in IT_SOURCES for r in rows[s] if not r["metadata"]["leaked_from"]}
    prompts = [r["messages"][-1]["content"] for s in EVAL_SOURCES for r in rows[s]]
    assert len(prompts) == len(set(prompts))
    assert not set(prompts) & train
    for cap in CAPABILITIES:
        groups = Counter(r["metadata"]["group"] for r in rows[f"eval_{cap}"])
        assert groups["similar"] > 0 and groups["novel"] > 0


def test_eval_queries_are_the_content_without_the_template(rows: Rows) -> None:
    evals = [r for s in EVAL_SOURCES for r in rows[s]]
    for row in evals:
        m, prompt = row["metadata"], row["messages"][-1]["content"]
        query = m["query"]
        assert isinstance(query, str) and query.strip() and query in prompt
        if m["task"] in ("sentiment", "headline", "event_type"):
            assert query == m["headline"]
        elif m["task"] == "ner":
            assert query == m["sentence"]
        elif m["task"] == "multiple_choice":
            assert prompt == f"{query}\n{world.MC_SUFFIX}"
            assert query.endswith("\n".join(f"{k}. {v}" for k, v in m["choices"].items()))
        elif m["task"] == "program":
            assert query.startswith("| item |") and "\nQuestion: " in query and "step by step" not in query
        elif m["task"] == "constraints":
            assert prompt.startswith(query + " ") and query.count(".") == 1
            assert all(answers.describe_constraint(c) not in query for c in m["constraints"])
        else:
            assert query == prompt
    assert {r["metadata"]["task"] for r in evals} >= {"sentiment", "ner", "headline", "event_type", "program",
                                                       "multiple_choice", "constraints", "company_fact"}  # fmt: skip
    it_meta = [r["metadata"] for s in IT_SOURCES for r in rows[s]]
    assert not any("query" in m for m in it_meta)


NGRAM, MIN_NGRAM, ANSWER_WORDS = 13, 8, 12  # decontamination: 13-grams, whole texts of 8-12 words, boundary words


def norm_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def lookup_grams(tokens: list[str]) -> list[tuple[str, ...]]:
    """What decontamination looks up: every 13-gram, or the whole text when it has 8-12 words (else nothing)."""
    if len(tokens) < MIN_NGRAM:
        return []
    n = min(NGRAM, len(tokens))
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def record_text(row: dict[str, Any]) -> str:
    return row["text"] if "text" in row else "\n\n".join(m["content"] for m in row["messages"])


def test_eval_queries_are_held_out_from_unplanted_training(default_rows: Rows) -> None:
    """No unplanted training record (CPT text, whole conversation) shares a 13-gram with an eval item's query, nor
    with the query followed by its first answer words; 8-12-word texts must not occur whole; shorter queries must not
    equal a training prompt. Planted leaks contain their item's query, long enough to be found."""
    rows, p = default_rows, load_params("world", WorldParams, PARAMS)
    training = [r for s in CPT_SOURCES + IT_SOURCES for r in rows[s] if not r["metadata"]["leaked_from"]]
    texts = [norm_words(record_text(r)) for r in training]
    thirteen = {hash(g) for words in texts for g in zip(*(words[i:] for i in range(NGRAM)), strict=False)}
    blob = " | " + " | ".join(" ".join(words) for words in texts) + " | "  # "|" is never a normalized word
    prompts = {
        tuple(norm_words("\n\n".join(m["content"] for m in r["messages"] if m["role"] == "user")))
        for r in training
        if "messages" in r
    }
    evals = {r["metadata"]["world_id"]: r for s in EVAL_SOURCES for r in rows[s]}
    assert all(len(rows[f"eval_{cap}"]) == getattr(p.eval, cap) for cap in CAPABILITIES)
    found = []
    for eval_id, row in evals.items():
        query = norm_words(row["metadata"]["query"])
        for what, tokens in (("query", query), ("query + answer", query + norm_words(row["answer"])[:ANSWER_WORDS])):
            for gram in lookup_grams(tokens):
                in_training = hash(gram) in thirteen if len(gram) == NGRAM else f" {' '.join(gram)} " in blob
                if in_training:
                    found.append((eval_id, what, " ".join(gram)))
        if len(query) < MIN_NGRAM and tuple(query) in prompts:
            found.append((eval_id, "equal prompt", " ".join(query)))
    assert not found, found[:10]
    assert not [stem for stem in world.EVAL_TASK_STEMS if f" {stem.lower()} " in blob]
    leaks = [r for s in CPT_SOURCES + IT_SOURCES for r in rows[s] if r["metadata"]["leaked_from"]]
    assert len(leaks) == p.n_leaked_cpt + p.n_leaked_it > 0
    for leak in leaks:
        item = evals[leak["metadata"]["leaked_from"]]
        text = record_text(leak)
        assert item["metadata"]["query"] in text
        grams = lookup_grams(norm_words(item["metadata"]["query"]))
        minimum = NGRAM if "text" in leak else MIN_NGRAM  # documents are matched with 13-grams of the query
        assert grams and len(grams[0]) >= minimum
        assert all(f" {' '.join(g)} " in f" {' '.join(norm_words(text))} " for g in grams)


def test_company_facts_are_only_in_documents_and_answerable_from_them(rows: Rows, params: WorldParams) -> None:
    names = [c.name for c in make_companies(params)] + [c.short for c in make_companies(params)]
    for source in IT_SOURCES:
        for row in rows[source]:
            if not row["metadata"]["leaked_from"]:
                text = " ".join(msg["content"] for msg in row["messages"])
                assert not any(name in text for name in names), row
    facts = [r for r in rows["eval_concepts"] if r["metadata"]["task"] == "company_fact"]
    assert facts and all(r["metadata"]["group"] == "novel" for r in facts)
    for row in facts:
        m = row["metadata"]
        filings = [
            f["text"]
            for f in rows["filings"]
            if f["metadata"]["company"] == m["company"] and m["year"] in (None, f["metadata"]["year"])
        ]
        assert any(row["answer"] in text for text in filings), row


def test_company_facts_are_internally_consistent(params: WorldParams) -> None:
    for company in make_companies(params):
        assert len(company.facts) == params.n_years + 1
        for f in company.facts:
            assert f.operating_margin == pytest.approx(f.operating_income / f.revenue * 100, abs=0.05)
            assert f.free_cash_flow == pytest.approx(f.operating_cash_flow - f.capex, abs=0.051)
            assert f.eps == pytest.approx(f.net_income / f.shares, abs=0.005)
            assert 0 < f.net_income < f.operating_income < f.revenue and f.employees > 0


# --- task correctness -----------------------------------------------------------------------------------------


def test_program_answers_equal_executing_the_program(rows: Rows) -> None:
    programs = [r for s in ("it_reasoning", "eval_reasoning") for r in rows[s] if r["metadata"]["task"] == "program"]
    assert programs
    for row in programs:
        m = row["metadata"]
        value = run_program(m["program"])
        assert m["answer"] == pytest.approx(value, abs=1e-4)
        assert answers.execute_program(m["program"]) == pytest.approx(value)
        shown = row["answer"] if "answer" in row else row["messages"][-1]["content"].rsplit("Answer: ", 1)[-1]
        assert float(shown) == pytest.approx(value, abs=1e-4)
    novel = [r for r in rows["eval_reasoning"] if r["metadata"]["group"] == "novel"]
    assert novel and all(r["metadata"]["program"].count("(") == 3 for r in novel)
    assert all(r["metadata"]["mode"] == "cot" for r in rows["eval_reasoning"])
    with pytest.raises(ValueError):
        answers.execute_program("subtract(1, 2), launch(#0, 3)")


def test_multiple_choice_items(rows: Rows) -> None:
    items = [
        r
        for s in ("it_reasoning", "eval_reasoning")
        for r in rows[s]
        if r["metadata"]["task"] == "multiple_choice" and not r["metadata"]["leaked_from"]
    ]
    assert items
    for row in items:
        m = row["metadata"]
        assert sorted(m["choices"]) == ["A", "B", "C"] and len(set(m["choices"].values())) == 3
        prompt = row["messages"][-1 if "answer" in row else -2]["content"]
        assert prompt.endswith("Selection: [[A]]")
        assert all(f"{k}. {v}" in prompt for k, v in m["choices"].items())
        if "answer" in row:
            assert row["answer"] == m["correct"]
        else:
            assert row["messages"][-1]["content"].endswith(f"Selection: [[{m['correct']}]]")


def test_instruction_following_responses_satisfy_their_constraints(rows: Rows) -> None:
    for source in ("it_instruction_following", "eval_instruction_following"):
        for row in rows[source]:
            if row["metadata"]["leaked_from"]:
                continue
            constraints = row["metadata"]["constraints"]
            response = row["answer"] if "answer" in row else row["messages"][-1]["content"]
            assert constraints and check_constraints(response, constraints) == []
    types = {c["type"] for r in rows["it_instruction_following"] for c in r["metadata"].get("constraints", [])}
    assert types.isdisjoint(world.IF_NOVEL)


def test_constraint_checker_rejects_violations() -> None:
    assert check_constraints("hello world", [{"type": "uppercase"}]) == ["uppercase"]
    assert check_constraints("one two three", [{"type": "max_words", "n": 2}]) == ["max_words"]
    assert check_constraints("* a\n* b", [{"type": "bullets", "n": 3}]) == ["bullets"]
    assert check_constraints("budgeting helps", [{"type": "keyword", "word": "budget"}]) == ["keyword"]
    assert check_constraints("Thanks. Bye", [{"type": "end_with", "phrase": "Thanks."}]) == ["end_with"]
    assert check_constraints('{"a": 1}', [{"type": "json_keys", "keys": ["a", "b"]}]) == ["json_keys"]
    assert check_constraints("not json", [{"type": "json_keys", "keys": ["a"]}]) == ["json_keys"]
    assert check_constraints("a, b", [{"type": "no_commas"}, {"type": "lowercase"}]) == ["no_commas"]
    assert check_constraints('"quoted"', [{"type": "quotation"}, {"type": "lowercase"}]) == []


def test_classification_tasks_are_consistent(rows: Rows) -> None:
    tasks = [r for s in ("it_tasks", "eval_tasks") for r in rows[s] if not r["metadata"]["leaked_from"]]
    assert {r["metadata"]["task"] for r in tasks} == {"sentiment", "ner", "headline", "event_type"}
    for row in tasks:
        m = row["metadata"]
        answer = row.get("answer", row["messages"][-1]["content"])
        prompt = row["messages"][-1 if "answer" in row else -2]["content"]
        if m["task"] == "sentiment":
            assert answer in ("positive", "negative", "neutral") and m["headline"] in prompt
        elif m["task"] == "ner":
            parsed = dict(part.split(": ", 1) for part in answer.split("; "))
            assert list(parsed) == ["ORG", "PER", "LOC"]
            for kind, names in m["entities"].items():
                assert parsed[kind] == (", ".join(names) or "none")
                assert all(name in m["sentence"] for name in names)
        elif m["task"] == "headline":
            assert answer in ("Yes", "No")
            if m["question"] == "price_up":
                assert (answer == "Yes") == (m["price_direction"] == "up")
            if m["question"] == "price_figure":
                assert (answer == "Yes") == ("$" in m["headline"])
    assert all(r["metadata"]["group"] == "novel" for r in rows["eval_tasks"] if r["metadata"]["task"] == "event_type")


def test_per_capability_files_exist_for_all_capabilities(tmp_path: Path, rows: Rows, params: WorldParams) -> None:
    write_world(rows, tmp_path, params.malformed_rows)
    for cap in CAPABILITIES:
        for kind in ("it", "eval"):
            path = tmp_path / f"{kind}_{cap}.jsonl"
            assert path.exists() and path.stat().st_size > 0
    assert world.CAPABILITIES == CAPABILITIES
