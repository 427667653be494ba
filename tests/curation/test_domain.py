from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
import random
from pathlib import Path

import fasttext
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from curation import domain
from curation.config import ConfigError, load_params
from curation.domain import (
    DomainParams,
    DomainScore,
    binary_scores,
    in_holdout,
    normalize,
    score_texts,
    selection_threshold,
    train_classifier,
)
from curation.io import read_records
from curation.schema import METADATA
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.realdata import (
    fomc_minutes,
    fomc_press_conferences,
    gum_documents,
    mdna_sections,
    openstax_modules,
    reuters_stories,
    word_chunks,
)


P = load_params("domain", DomainParams, PARAMS)

FINANCE_WORDS = [
    *("revenue", "margin", "dividend", "earnings", "bond", "yield", "equity", "debt", "interest", "rate"),
    *("inflation", "quarter", "guidance", "cash", "flow", "shares", "investors", "valuation", "liquidity"),
    *("credit", "capital", "expenditure", "operating", "income", "balance", "sheet", "hedge"),
]
GENERAL_WORDS = [
    *("garden", "recipe", "football", "hiking", "river", "painting", "concert", "village", "holiday", "weather"),
    *("kitchen", "novel", "teacher", "forest", "bicycle", "museum", "puppy", "mountain", "festival", "orchestra"),
    *("poem", "castle", "island", "breakfast"),
]
COMMON = ["the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at", "from", "that"]


def synthetic(words: list[str], rng: random.Random, n_words: int = 60) -> str:
    """A text of topic words mixed with function words, in sentences."""
    tokens = [rng.choice(words) if rng.random() < 0.5 else rng.choice(COMMON) for _ in range(n_words)]
    return ". ".join(" ".join(tokens[i : i + 12]).capitalize() for i in range(0, n_words, 12)) + "."


def world(seed: int = 0) -> list[dict]:
    """Seeds (4 finance sources, 1 general), a mixed web crawl with truth, IT and eval records."""
    rng = random.Random(seed)
    records = []
    for source in ("filings", "news", "calls", "glossary"):
        records += [make_record(synthetic(FINANCE_WORDS, rng), source=source) for _ in range(25)]
    records += [make_record(synthetic(GENERAL_WORDS, rng), source="general", capability="general") for _ in range(40)]
    for i in range(40):
        finance = i % 2 == 0
        text = synthetic(FINANCE_WORDS if finance else GENERAL_WORDS, rng)
        records.append(make_record(text, source="web", metadata={"is_finance": finance}))
    turns = [{"role": "user", "content": synthetic(GENERAL_WORDS, rng)}, {"role": "assistant", "content": "Sure."}]
    records.append(make_record(kind="it", source="it_general", capability="general", messages=turns))
    records.append(make_record(kind="eval", source="eval_general", split="eval", messages=turns, answer="x"))
    return records


def test_normalize_is_one_line_of_lowercase_tokens() -> None:
    text = "Net income rose 12.5% to $3,400\nmillion in Q3.\n\nSee Note 7."
    assert normalize(text, 100) == "net income rose 00 . 0 % to $ 0 , 000 million in q0 . see note 0 ."
    assert normalize(text, 3) == "net income rose"
    assert "\n" not in normalize("a\r\nb\tc", 10) and normalize("  ", 10) == ""


def test_holdout_is_deterministic_and_about_the_fraction() -> None:
    ids = [f"{i:016x}" for i in range(4000)]
    held = [in_holdout(i, 0.2) for i in ids]
    assert held == [in_holdout(i, 0.2) for i in ids]
    assert 0.17 < sum(held) / len(held) < 0.23
    assert not any(in_holdout(i, 0.0) for i in ids) and all(in_holdout(i, 1.0) for i in ids)


def test_threshold_and_percentile_cut_the_same_scores_differently() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    assert selection_threshold(scores, P) == P.threshold == 0.5
    top = dataclasses.replace(P, mode="percentile", percentile=25)
    assert selection_threshold(scores, top) == 0.8  # 2 of 8 kept
    assert selection_threshold(scores, dataclasses.replace(top, percentile=60)) == 0.4  # ceil(4.8) = 5 kept
    assert selection_threshold(scores, dataclasses.replace(top, percentile=100)) == 0.1
    assert selection_threshold([0.7, 0.7, 0.7, 0.2], dataclasses.replace(top, percentile=25)) == 0.7  # ties kept
    with pytest.raises(ConfigError, match="percentile"):
        selection_threshold(scores, dataclasses.replace(top, percentile=0))


def test_binary_scores() -> None:
    metrics = binary_scores([True, True, False, False], [True, False, True, False])
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.5, 0.5, 0.5)
    assert (metrics["finance"], metrics["general"]) == (2, 2)


def seed_texts() -> tuple[list[str], list[bool]]:
    rng = random.Random(1)
    texts = [synthetic(FINANCE_WORDS, rng) for _ in range(60)] + [synthetic(GENERAL_WORDS, rng) for _ in range(20)]
    return texts, [True] * 60 + [False] * 20


def test_training_is_deterministic_and_separates_the_classes(tmp_path: Path) -> None:
    texts, labels = seed_texts()
    probe = [synthetic(FINANCE_WORDS, random.Random(2)), synthetic(GENERAL_WORDS, random.Random(3))]
    first = score_texts(train_classifier(texts, labels, P), probe, P.max_words)
    for _ in range(2):  # several trainings in one process: fastText's uninitialized memory must not leak in
        assert score_texts(train_classifier(texts, labels, P), probe, P.max_words) == first
    assert first[0] > 0.75 > 0.25 > first[1]
    other_seed = dataclasses.replace(P, fasttext=dataclasses.replace(P.fasttext, seed=7))
    assert score_texts(train_classifier(texts, labels, other_seed), probe, P.max_words) != first

    model = train_classifier(texts, labels, P)
    model.save_model(str(tmp_path / "model.bin"))
    scorer = DomainScore(tmp_path / "model.bin", P.max_words)
    assert [scorer(Document(text=t, id=str(i)))["score"] for i, t in enumerate(probe)] == first
    assert copy.deepcopy(scorer)._model is None and len(pickle.dumps(scorer)) < 1000  # workers load the file


def test_training_needs_both_classes() -> None:
    with pytest.raises(ConfigError, match="both classes"):
        train_classifier(["revenue rose"], [True], P)


def test_stage_books_balance_exemptions_hold_and_truth_is_measured(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", world())
    metrics = run_main(domain.main, tmp_path, project(tmp_path), [inputs], "domain")
    assert metrics["in"] == 182 == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"] == {"domain.not_finance": 20}
    assert metrics["truth"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "finance": 20, "general": 20}
    assert metrics["holdout"]["f1"] == 1.0 and metrics["holdout"]["finance"] + metrics["holdout"]["general"] > 10
    seen = sum(metrics[part][label] for part in ("training", "holdout") for label in ("finance", "general"))
    assert seen == 140  # every seed record: trained on or held out
    assert metrics["selection"] == {"mode": "threshold", "threshold": 0.5, "percentile": None, "judged": 40}

    kept = read_records([tmp_path / "domain"]).to_pylist()
    general = [json.loads(r[METADATA])["domain"]["score"] for r in kept if r["source"] == "general"]
    assert len(general) == 40 and max(general) < 0.5  # general seeds: scored, never judged
    assert {"it_general", "eval_general"} <= {r["source"] for r in kept}
    drops = pq.read_table(tmp_path / "domain" / "drops.parquet").to_pylist()
    assert {d["source"] for d in drops} == {"web"} and all(d["score"] < d["threshold"] == 0.5 for d in drops)

    model = fasttext.load_model(str(tmp_path / "domain" / "model.bin"))
    stored = {r["text"]: json.loads(r[METADATA])["domain"]["score"] for r in kept if r["text"]}
    assert score_texts(model, list(stored), P.max_words) == list(stored.values())
    assert not list(tmp_path.glob(".domain-*"))  # the temporary model folder is gone


def test_percentile_mode_keeps_the_top_share_and_reports_the_cut(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", world())
    params = project(tmp_path, domain={"mode": "percentile", "percentile": 25})
    metrics = run_main(domain.main, tmp_path, params, [inputs], "domain")
    assert metrics["dropped"] == {"domain.not_finance": 30}  # 10 of 40 web records kept
    cut = metrics["selection"]["threshold"]
    assert metrics["selection"]["percentile"] == 25 and cut > 0.5
    kept = read_records([tmp_path / "domain"]).to_pylist()
    kept_web = [json.loads(r[METADATA]) for r in kept if r["source"] == "web"]
    assert len(kept_web) == 10 and all(m["domain"]["score"] >= cut and m["is_finance"] for m in kept_web)
    assert metrics["truth"]["precision"] == 1.0 and metrics["truth"]["recall"] == 0.5


def test_scope_is_a_param(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", world())
    nothing = run_main(domain.main, tmp_path, project(tmp_path, domain={"apply_to_sources": []}), [inputs], "none")
    assert nothing["dropped"] == {} and nothing["kept"] == 182 and "truth" not in nothing
    params = project(tmp_path, domain={"general_sources": ["news"], "finance_sources": ["news", "filings"]})
    with pytest.raises(ConfigError, match="both"):
        run_main(domain.main, tmp_path, params, [inputs], "overlap")


# Real data: train on 10-K MD&A, FOMC minutes and press conferences, an introductory business textbook, and half of
# GUM (its dev documents); evaluate on other sources: Reuters-21578 stories with a financial topic, the OpenStax
# finance textbook, and GUM's test documents. Everything is cut into chunks of comparable length.
FINANCE_TOPICS = {"earn", "acq", "money-fx", "interest", "money-supply", "trade", "gnp", "cpi", "bop", "reserves"}


def reuters_finance(files: int, min_words: int = 80, max_words: int = 300) -> list[str]:
    """Bodies of stories whose <TOPICS> include a financial topic, whitespace-joined and deduplicated."""
    stories = []
    for topics, body in reuters_stories(files):
        if topics & FINANCE_TOPICS:
            text = " ".join(body.replace("&lt;", "<").replace("&amp;", "&").split())
            words = text.removesuffix("&#3;").split()
            if len(words) >= min_words and " ".join(words[:max_words]) not in stories:
                stories.append(" ".join(words[:max_words]))
    return stories


def gum_chunks(split: str, size: int) -> list[str]:
    return [c for doc in gum_documents(split) for c in word_chunks(doc, size)]


def real_split() -> tuple[list[str], list[bool], list[str], list[bool]]:
    """Training texts and labels, then held-out texts and labels, from different sources."""
    finance = [c for text in mdna_sections()[::2] for c in word_chunks(text, 100)[:6]]
    finance += [c for text in fomc_minutes()[::4] for c in word_chunks(text, 100)[:3]]
    finance += [c for text in fomc_press_conferences() for c in word_chunks(text, 100)[:4]]
    finance += [c for text in openstax_modules("introduction_to_business") for c in word_chunks(text, 100)[:3]]
    general = gum_chunks("dev", 100)

    reuters = reuters_finance(files=2)[:200]  # reut2-000.sgm and reut2-001.sgm
    finance_book = openstax_modules("principles_of_finance")[::2]
    book = [c for text in finance_book for c in word_chunks(text, 150)[:2]][:150]
    held_out = gum_chunks("test", 150)
    train_labels = [True] * len(finance) + [False] * len(general)
    test_labels = [True] * (len(reuters) + len(book)) + [False] * len(held_out)
    return finance + general, train_labels, reuters + book + held_out, test_labels


def test_real_finance_is_told_from_general_text_on_unseen_sources() -> None:
    train, train_labels, test, test_labels = real_split()
    assert len(train) > 1300 and len(test) > 450 and sum(test_labels) > 300
    model = train_classifier(train, train_labels, P)
    scores = score_texts(model, test, P.max_words)
    metrics = binary_scores([s >= P.threshold for s in scores], test_labels)
    print(f"real held-out sources: {metrics}")
    assert metrics["f1"] >= 0.85, metrics


def test_outputs_do_not_depend_on_task_count_and_reruns_are_identical(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", world(), rows_per_shard=50)  # 4 input shards

    def digest(name: str, tasks: int) -> str:
        params = project(tmp_path, executor={"tasks": tasks, "workers": 1})
        run_main(domain.main, tmp_path, params, [inputs], name)
        files = sorted((tmp_path / name).iterdir())
        assert [f.name for f in files] == ["drops.parquet", "model.bin", "records-00000.parquet"]
        return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()

    assert digest("one", 1) == digest("three", 3) == digest("again", 1)
