from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import decontam
from curation.config import ConfigError, load_params
from curation.decontam import (
    DecontamParams,
    EvalItem,
    ExternalEvalSet,
    build_index,
    cut_spans,
    ngram_hashes,
    ngram_size,
    normalize,
    read_eval_items,
    read_external,
    scan_conversation,
    scan_document,
    word_spans,
    words,
)
from curation.io import read_records
from curation.schema import Kind
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.realdata import phrasebank, pixiu_conversations


P = load_params("decontam", DecontamParams, PARAMS)

FINQA = (
    "Context: The table shows payment volume for the major card networks in 2008. American Express processed 5 "
    "billion transactions with a total payments volume of $637 billion, while Discover processed 1.6 billion "
    "transactions. Question: what is the average payment volume per transaction for american express?",
    "127.4",
)
SENTIMENT = ("Sentiment of the headline: Nokia shares slump after profit warning", "negative")  # 10 words
OPTIONS = "A) 4.5% B) 5.0% C) 5.5% D) 6.0%"  # 12 words once normalized: "a 4 5 b 5 0 c 5 5 d 6 0"
MCQ = (f"A bond has a face value of $1,000 and pays an annual coupon of $50. What is its coupon rate? {OPTIONS}", "B")
EBITDA = ("Define EBITDA.", "Earnings before interest, taxes, depreciation and amortization.")  # 2-word prompt
PLANETS = ("Which planet in the solar system has the most confirmed moons as of 2023?", "Saturn")


def user(text: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def eval_record(item: tuple[str, str], source: str, world_id: str, task: str | None) -> dict[str, Any]:
    meta = {"world_id": world_id} | ({"task": task} if task else {})
    messages = [{"role": "system", "content": "You are a financial analyst."}, {"role": "user", "content": item[0]}]
    return make_record(kind="eval", source=source, split="eval", messages=messages, answer=item[1], metadata=meta)


EVALS = {
    "finqa": eval_record(FINQA, "eval_reasoning", "e-finqa", "finqa"),
    "fpb": eval_record(SENTIMENT, "eval_tasks", "e-fpb", "fpb"),
    "cfa_mcq": eval_record(MCQ, "eval_concepts", "e-mcq", "cfa_mcq"),
    "terms": eval_record(EBITDA, "eval_concepts", "e-terms", "terms"),
    "eval_general": eval_record(PLANETS, "eval_general", "e-planets", None),  # no task: the source names it
}
ITEMS = [decontam.eval_item(r) for r in EVALS.values()]

BEFORE = (
    "Card networks had a strong year. Merchants accepted more contactless payments, and issuers kept marketing "
    "budgets flat while interchange fees stayed under review by regulators in several countries. Analysts noted "
    "that travel spending recovered faster than expected, which lifted cross-border volumes for every network. "
    "Smaller issuers focused on rewards programs to win younger customers, and banks closed branches as more "
    "customers moved to mobile apps for everyday banking and bill payments. "
)
AFTER = (
    " Looking ahead, management expects growth to moderate as consumer spending slows and competition from "
    "real-time payment systems increases. The company plans to invest in fraud prevention and data analytics, and "
    "it will continue to return capital to shareholders through dividends and buybacks over the coming years. "
    "Credit quality remained stable, with delinquencies close to historical lows across the card portfolio."
)
FILLER = "Meanwhile the board met in Helsinki to discuss the dividend policy for next year. "


def leaked(text: str | None = None, *, source: str, world_id: str, leak: str, **cols: Any) -> dict[str, Any]:
    return make_record(text, source=source, metadata={"world_id": world_id, "leaked_from": leak}, **cols)


def clean_records() -> list[dict[str, Any]]:
    """Records that share phrases, numbers and short stretches with the eval items but no n-gram of them."""
    companies = ["Acme", "Nokia", "Componenta", "Sampo", "Fiskars", "Outokumpu", "Wartsila", "Kone", "Neste", "UPM"]
    years = [2019, 2020, 2021, 2022, 2023]
    docs = []
    for i, (company, year) in enumerate(itertools.product(companies, years)):
        docs.append(
            f"{company} reported that revenue increased compared to the prior year, reaching EUR {100 + i}.5 million "
            f"in fiscal {year}. Operating profit rose {i % 9 + 1}.2% and the board proposed a dividend of EUR 0.{i}. "
            "What is the average payment volume per transaction for a regional card network? Management said it "
            f"does not disclose that figure. We define EBITDA as earnings before interest, taxes, depreciation and "
            f"amortization. American Express processed more transactions in {year} than in the year before."
        )
    verbs = ["rise", "fall", "jump", "slide", "climb"]
    events = ["profit warning", "strong earnings", "CEO exit", "merger news"]
    conversations = [
        user(f"Sentiment of the headline: {company} shares {verb} after {event}", "neutral")
        for company, verb, event in itertools.product(companies, verbs, events)
    ]
    conversations += [user(f"Define {term}.", f"{term} is a financial measure.") for term in ["EBIT", "ROE", "P/E"]]
    conversations += [
        user("Define EBITDA and explain why analysts use it.", "It approximates operating cash flow."),
        user(f"Which rate applies? {OPTIONS}", "C"),  # the MCQ's options with another answer: no boundary n-gram
    ]
    records = [make_record(text, source="filings", metadata={"world_id": f"c{i}"}) for i, text in enumerate(docs)]
    records += [
        make_record(kind="it", source="it_tasks", messages=m, metadata={"world_id": f"i{i}"})
        for i, m in enumerate(conversations)
    ]
    return records


PAGE = BEFORE + " ".join(FINQA) + AFTER


def training_records() -> dict[str, dict[str, Any]]:
    many = BEFORE + "".join(f"{' '.join(FINQA)} {FILLER}{' '.join(MCQ)} {FILLER}" for _ in range(6)) + AFTER
    return {
        "cut": leaked(PAGE, source="web", world_id="l-cut", leak="e-finqa"),
        "many": leaked(many, source="web", world_id="l-many", leak="e-finqa"),
        "short": leaked(
            f"Quiz of the day. {' '.join(MCQ)} Good luck!", source="web", world_id="l-short", leak="e-mcq"
        ),
        "prompt": leaked(
            kind="it", source="it_tasks", world_id="l-prompt", leak="e-fpb", messages=user(SENTIMENT[0], "Bearish.")
        ),
        "boundary": leaked(
            kind="it",
            source="it_tasks",
            world_id="l-boundary",
            leak="e-mcq",
            messages=user(f"Which rate applies? {OPTIONS}", "B"),
        ),
        "exact": leaked(
            kind="it",
            source="it_concepts",
            world_id="l-exact",
            leak="e-terms",
            messages=user("define  ebitda!", "A profit measure."),
        ),
    }


# --- pure functions ----------------------------------------------------------------------------------------------


def test_normalization_keeps_digits_and_drops_case_punctuation_and_accents() -> None:
    assert normalize("Net sales rose 5.2 % to EUR205.5m, per the CAFÉ's CFO!") == (
        "net sales rose 5 2 to eur205 5m per the cafe s cfo"
    )
    assert normalize("Revenue rose 5.2%") != normalize("Revenue rose 7.9%")
    assert normalize("  On 25 August 2009 , Sampo 's stake\n") == normalize("on 25 August 2009, Sampo's stake")
    tokens, starts, ends = word_spans("Hi, you_two 3.5")
    assert tokens == words("Hi, you_two 3.5") == ["hi", "you", "two", "3", "5"]
    assert (starts, ends) == ([0, 4, 8, 12, 14], [2, 7, 11, 13, 15])


@pytest.mark.parametrize(("n_words", "size"), [(40, 13), (13, 13), (10, 10), (8, 8), (7, None), (0, None)])
def test_ngram_size_is_the_whole_text_for_short_items(n_words: int, size: int | None) -> None:
    assert ngram_size(n_words, P) == size


def test_index_leaves_out_template_ngrams_but_counts_identical_items_once() -> None:
    template = "Analyze the sentiment of this statement extracted from a financial news article and answer briefly:"
    sentences = [
        f"Company {i} said its quarterly order intake grew by {i} percent in the Nordic region" for i in range(30)
    ]
    items = [EvalItem("fpb", f"t{i}", f"{template} {s}", "positive") for i, s in enumerate(sentences)]
    items += [
        EvalItem("dup", f"d{i}", "The same long question about bond yields and coupon rates asked again", "x")
        for i in range(30)
    ]
    index = build_index(items, P)
    assert index.template_ngrams > 0
    same_template = scan_conversation(
        f"{template} Revenue at Kone fell sharply in the third quarter of the year", "", index
    )
    assert same_template.hits == 0
    leak = scan_conversation(f"Please classify: {sentences[3]}", "", index)
    assert leak.checks == ("prompt",) and {index.refs[i] for i in leak.items} == {("fpb", "t3")}
    duplicate = scan_conversation("The same long question about bond yields and coupon rates asked again", "", index)
    assert len(duplicate.items) == 30  # 30 identical items are one content, not a template


def test_prefix_lookup_finds_exactly_what_hashing_every_size_finds() -> None:
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(6)]  # a tiny vocabulary: prefixes collide often
    text = [rng.choice(vocabulary) for _ in range(3000)]
    items = []
    for i in range(60):
        start, n = rng.randrange(2900), rng.randrange(9, 30)
        items.append(EvalItem("b", f"e{i}", " ".join(text[start : start + n]), ""))
    index = build_index(items, dataclasses.replace(P, max_items_per_ngram=1000))
    assert len(index.text.sizes) > 1
    brute = sorted(
        (i, i + n, index.text.items[h])
        for n in index.text.sizes
        for i, h in enumerate(ngram_hashes(text, n))
        if h in index.text.items
    )
    assert sorted(index.text.find(text)) == brute and len(brute) > 60


def test_min_ngram_above_ngram_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="min_ngram"):
        build_index(ITEMS, dataclasses.replace(P, min_ngram=P.ngram + 1))


def test_document_cut_covers_the_window_in_whole_words_and_keeps_the_rest() -> None:
    index = build_index(ITEMS, P)
    scan = scan_document(PAGE, index, P)
    assert scan.hits == 1 and {index.refs[i][0] for i in scan.items} == {"finqa"}
    assert normalize(FINQA[0]) not in normalize(scan.text) and "127" not in words(scan.text)
    assert scan_document(scan.text, index, P).hits == 0
    _, starts, ends = word_spans(PAGE)
    start = PAGE.index(FINQA[0])
    first = starts.index(start)
    [(cut_lo, cut_hi)] = cut_spans([(first, first + len(words(" ".join(FINQA))))], starts, ends, len(PAGE), 200)
    assert start - cut_lo >= 200 and cut_hi - (start + len(" ".join(FINQA))) >= 200
    assert cut_lo in starts and cut_hi in ends  # whole words
    assert scan.text == PAGE[:cut_lo].strip() + "\n\n" + PAGE[cut_hi:].strip()
    clean = "Revenue increased compared to the prior year."
    assert scan_document(clean, index, P) == decontam.Scan(0, frozenset(), (), clean)


def test_cut_at_the_edges_of_the_text_removes_to_the_edge() -> None:
    text = "a b c d e f g h i j"
    _, starts, ends = word_spans(text)
    assert cut_spans([(0, 2)], starts, ends, len(text), 3) == [(0, 5)]  # "d" starts 3 chars after "b": kept
    assert cut_spans([(8, 10)], starts, ends, len(text), 3) == [(14, len(text))]
    assert cut_spans([(1, 2), (7, 8)], starts, ends, len(text), 6) == [(0, len(text))]  # windows merge


def test_conversation_checks_prompt_boundary_and_short_exact_prompts() -> None:
    index = build_index(ITEMS, P)

    def found(prompt: str, answer: str) -> tuple[tuple[str, ...], set[str]]:
        scan = scan_conversation(prompt, f"{prompt}\n\n{answer}", index)
        return scan.checks, {index.refs[i][0] for i in scan.items}

    assert found(SENTIMENT[0], "Bearish.") == (("prompt",), {"fpb"})
    assert found(f"Please tell me. {SENTIMENT[0]}?", "negative") == (("prompt", "conversation"), {"fpb"})
    assert found(f"Which rate applies? {OPTIONS}", "B") == (("conversation",), {"cfa_mcq"})
    assert found(f"Which rate applies? {OPTIONS}", "C") == ((), set())
    assert found("Define EBITDA", "x") == (("prompt",), {"terms"})
    assert found("Please define EBITDA.", "x") == ((), set())  # short prompts match only when equal
    assert found("Sentiment of the headline: Nokia shares rise after profit warning", "negative") == ((), set())


# --- the stage ---------------------------------------------------------------------------------------------------


def run(tmp_path: Path, records: list[dict[str, Any]], name: str = "decontam", **changes: Any) -> dict[str, Any]:
    inputs = write_input(tmp_path / "in", records, rows_per_shard=100)
    params = project(tmp_path, decontam=changes) if changes else project(tmp_path)
    return run_main(decontam.main, tmp_path, params, [inputs], name)


def benchmark_report(hit: int, dropped: int, edited: int, sources: dict[str, int]) -> dict[str, Any]:
    """One benchmark of the report, for a benchmark of one item."""
    return {
        "items": 1,
        "items_not_indexed": 0,
        "items_hit": hit,
        "training_records_hit": dropped + edited,
        "records_dropped": dropped,
        "records_edited": edited,
        "by_training_source": sources,
    }


def test_stage_cuts_drops_reports_and_meets_ground_truth(tmp_path: Path) -> None:
    train, clean = training_records(), clean_records()
    records = [*EVALS.values(), *train.values(), *clean]
    metrics = run(tmp_path, records)
    assert metrics["in"] == len(records) == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"] == {"decontam.contaminated": 2, "decontam.contaminated_instruction": 3}
    drops = {r["id"]: r for r in pq.read_table(tmp_path / "decontam" / "drops.parquet").to_pylist()}
    expected = {
        "many": ("decontam.contaminated", 12.0, 10.0),
        "short": ("decontam.contaminated", None, 200.0),
        "prompt": ("decontam.contaminated_instruction", 1.0, 0.0),
        "boundary": ("decontam.contaminated_instruction", 1.0, 0.0),
        "exact": ("decontam.contaminated_instruction", 1.0, 0.0),
    }
    for name, (code, score, threshold) in expected.items():
        row = drops[train[name]["id"]]
        assert (row["reason"], row["threshold"]) == (code, threshold), name
        assert score is None or row["score"] == score, name
    assert drops[train["short"]["id"]]["score"] < 200
    assert drops[train["many"]["id"]]["text"] == train["many"]["text"]  # a dropped document keeps its whole text
    assert EVALS["cfa_mcq"]["id"] in drops[train["boundary"]["id"]]["detail"]
    assert "benchmarks cfa_mcq, finqa" in drops[train["many"]["id"]]["detail"]

    kept = {r["id"]: r for r in read_records([tmp_path / "decontam"]).to_pylist()}
    assert all(r["id"] in kept for r in EVALS.values())
    page = kept[train["cut"]["id"]]
    found = json.loads(page["metadata"])["decontam"]
    assert found == {
        "hits": 1,
        "benchmarks": ["finqa"],
        "eval_ids": [EVALS["finqa"]["id"]],
        "removed_chars": len(PAGE) - len(page["text"]),
        "checks": ["document"],
    }
    assert normalize(FINQA[0]) not in normalize(page["text"]) and page["text"].startswith("Card networks had")
    assert page["text"].endswith("across the card portfolio.") and found["removed_chars"] > len(" ".join(FINQA)) + 400
    untouched = [r for r in clean if r["kind"] == Kind.CPT]
    assert all(kept[r["id"]]["text"] == r["text"] for r in untouched)
    assert all(json.loads(kept[r["id"]]["metadata"])["decontam"]["hits"] == 0 for r in clean)

    assert metrics["contamination"] == {
        "cfa_mcq": benchmark_report(hit=1, dropped=3, edited=0, sources={"it_tasks": 1, "web": 2}),
        "eval_general": benchmark_report(hit=0, dropped=0, edited=0, sources={}),
        "finqa": benchmark_report(hit=1, dropped=1, edited=1, sources={"web": 2}),
        "fpb": benchmark_report(hit=1, dropped=1, edited=0, sources={"it_tasks": 1}),
        "terms": benchmark_report(hit=1, dropped=1, edited=0, sources={"it_concepts": 1}),
    }
    assert metrics["edited"] == {"records": 1, "removed_chars": found["removed_chars"]}
    assert metrics["truth"] == {
        "leaked_removed": 1.0,
        "clean_removed": 0.0,
        "leaked": 6,
        "leaked_eval_missing": 0,
        "clean": len(clean),
        "clean_dropped": 0,
        "clean_edited": 0,
    }
    assert len(clean) >= 250
    report = json.loads((tmp_path / "decontam" / decontam.REPORT_FILE).read_text())
    assert report["contamination"] == metrics["contamination"] and report["truth"] == metrics["truth"]


def test_outputs_do_not_depend_on_task_count(tmp_path: Path) -> None:
    records = [*EVALS.values(), *training_records().values(), *clean_records()[:40]]
    inputs = write_input(tmp_path / "in", records, rows_per_shard=10)

    def outputs(name: str, tasks: int) -> tuple[bytes, bytes, dict[str, Any]]:
        metrics = run_main(decontam.main, tmp_path, project(tmp_path, executor={"tasks": tasks}), [inputs], name)
        folder = tmp_path / name
        return (folder / "records-00000.parquet").read_bytes(), (folder / "drops.parquet").read_bytes(), metrics

    assert outputs("one", 1) == outputs("three", 3)


def test_extra_eval_sources_and_external_sets_are_eval_items(tmp_path: Path) -> None:
    held_out = "The held out analyst exam asks how a rise in the discount rate changes the present value of a bond"
    external = "An external benchmark question about the effect of share buybacks on earnings per share this year"
    path = tmp_path / "ext.jsonl"
    path.write_text(json.dumps({"question": external}) + "\n")
    copies = [
        make_record(held_out, source="exam_bank", metadata={"world_id": "x"}),  # split train, but a benchmark
        make_record(f"{BEFORE} {held_out}. {AFTER}", source="web"),
        make_record(kind="it", source="it_tasks", messages=user(external, "It raises EPS.")),
        make_record(AFTER, source="web"),
    ]
    ext = [ExternalEvalSet(benchmark="ext_bench", path=str(path), text_field="question")]
    p = dataclasses.replace(P, extra_eval_sources=["exam_bank"], external=ext)
    items = read_eval_items([write_input(tmp_path / "in", copies)], p)
    assert [(i.benchmark, i.prompt) for i in items] == [("exam_bank", held_out)]
    metrics = run(tmp_path, copies, extra_eval_sources=["exam_bank"], external=[dataclasses.asdict(ext[0])])
    assert metrics["in"] == 4 and metrics["dropped"] == {"decontam.contaminated_instruction": 1}
    report = metrics["contamination"]
    assert report["exam_bank"]["records_edited"] == 1 and report["ext_bench"]["records_dropped"] == 1
    assert report["exam_bank"]["by_training_source"] == {"web": 1}
    assert "truth" not in metrics  # no ground-truth labels, nothing to measure


def test_external_set_errors_name_the_file_row_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "ext.jsonl"
    path.write_text('{"question": "a"}\n{"text": "b"}\n')
    with pytest.raises(ConfigError, match=r"ext.jsonl line 2: no 'question' field; set decontam.external\[b\]"):
        read_external(ExternalEvalSet(benchmark="b", path=str(path), text_field="question"))
    pq.write_table(pa.table({"question": ["q1", None]}), tmp_path / "ext.parquet")
    items = read_external(ExternalEvalSet(benchmark="b", path=str(tmp_path / "ext.parquet"), text_field="question"))
    assert [(i.eval_id, i.prompt) for i in items] == [("b:0", "q1"), ("b:1", "")]
    with pytest.raises(ConfigError, match="no column 'text'"):
        read_external(ExternalEvalSet(benchmark="b", path=str(tmp_path / "ext.parquet"), text_field="text"))


# --- real data: PIXIU's FPB instructions are PhraseBank sentences --------------------------------------------------


def pixiu(name: str, every: int) -> list[tuple[str, str]]:
    """(prompt, conversation) of every `every`-th PIXIU record of a file."""
    return [(turns[0], "\n\n".join(turns)) for turns in pixiu_conversations(name)[::every]]


def test_pixiu_fpb_instructions_overlap_phrasebank_and_fiqa_does_not() -> None:
    items = [EvalItem("fpb", f"fpb:{i}", sentence, label) for i, sentence, label in phrasebank()]
    index = build_index(items, P)
    assert len(items) == 4846 and index.template_ngrams < 50  # a few sentences repeat across items

    fpb = pixiu("FPB/valid.jsonl", every=5)
    scans = [scan_conversation(prompt, conversation, index) for prompt, conversation in fpb]
    hit = sum(bool(s.hits) for s in scans)
    checks = Counter(s.checks for s in scans)
    # 98% of PIXIU's FPB instructions are PhraseBank sentences found here; the rest are sentences under
    # min_ngram words, which are matched only as an equal prompt, and PIXIU wraps them in an instruction.
    assert hit / len(scans) > 0.97, (hit, len(scans), checks)
    assert checks[("conversation",)] > 0  # 7-word sentences found only by their boundary n-gram with the label
    short = [p.splitlines()[-1] for (p, _), s in zip(fpb, scans, strict=True) if not s.hits]
    assert all(len(words(sentence)) + 1 < P.min_ngram for sentence in short)

    fiqa = pixiu("fiqasa/train.jsonl", every=5)  # FiQA-SA training instructions: another benchmark's sentences
    assert sum(bool(scan_conversation(p, c, index).hits) for p, c in fiqa) == 0
