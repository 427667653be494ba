from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams

from curation import quality
from curation.config import ConfigError, load_params
from curation.io import read_records
from curation.pipeline import judged_text
from curation.quality import (
    DUP_NGRAMS,
    RULES,
    TOP_NGRAMS,
    QualityParams,
    QualityRules,
    QualityScorer,
    is_figure_line,
    ngram_repetition,
)
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.realdata import fomc_cleaned, line_chunks, mdna_cleaned, reuters_cleaned


P = load_params("quality", QualityParams, PARAMS)
SCORER, RULES_ = QualityScorer(P), QualityRules(P)


def reason(text: str, kind: str = "cpt", language: str = "en") -> str | None:
    """The failed rule for a text, or None when it is kept (the pure score + decide of the stage)."""
    drop = RULES_(SCORER(text), kind, language)
    return None if drop is None else drop.failure


# ------------------------------------------------------------------------------------ hand-made documents

FILING = (
    "Net sales increased $1.24 billion, or 8.3%, to $16.20 billion in fiscal 2023 from $14.96 billion in fiscal "
    "2022, driven by a 5.1% rise in volume and 3.2 points of pricing.\n"
    "Gross margin was 41.2%, compared with 40.7% a year earlier, as freight costs fell 12% and mix added 0.4 points.\n"
    "Operating income rose 14.8% to $2.31 billion; diluted EPS was $4.87 versus $4.12, including a $0.18 charge.\n"
    "Cash from operations was $2.9 billion, and we returned $1.6 billion to shareholders ($1.1 billion of "
    "buybacks and $0.5 billion of dividends) while net debt fell to 1.4x EBITDA from 1.7x at December 31, 2022."
)
TABLE = """Consolidated results (USD millions, except per-share data)
2023 2022 Change
Net sales $ 16,204 $ 14,961 8.3%
Cost of sales (9,528) (8,870) 7.4%
Gross profit 6,676 6,091 9.6%
Selling, general & administrative (3,912) (3,656) 7.0%
Research & development (451) (420) 7.4%
Operating income 2,313 2,015 14.8%
Interest expense, net (184) (171) 7.6%
Income before income taxes 2,129 1,844 15.5%
Income tax expense (468) (396) 18.2%
Net income 1,661 1,448 14.7%
Diluted EPS 4.87 4.12 18.2%
Diluted shares 341 351 (2.8)
Capital expenditures (702) (655) —"""
EARNINGS_WIRE = """Shr 31 cts vs 18 cts
Net 90 mln vs 51 mln
Sales 1.58 billion vs 1.42 billion
Avg shrs 274 mln vs 269 mln
Nine mths
Shr 79 cts vs 42 cts
Net 233 mln vs 129 mln
Sales 4.58 billion vs 4.22 billion
Avg shrs 238 mln vs 267 mln
NOTE: 1987 nine months net includes Caremark Inc from August 3, plus a 12 mln dlr gain.
Reuter"""
PROSE = (
    "The company expects revenue growth to slow next year as the benefit of price increases fades. "
    "Management said that it will continue to invest in new stores and in the supply chain, and that the "
    "balance sheet gives it room to do so. Analysts at two banks have lowered their estimates for the "
    "second half, citing weaker demand from commercial customers."
)
SPAM_REPEATED_LINES = "\n".join(
    ["BUY NOW!!! LIMITED OFFER!!!"] * 6
    + [
        "Best prices on the market, visit us today and save big on every single order.",
        "Thousands of happy customers already trust our amazing deals and fast shipping.",
        "Do not wait until tomorrow because this offer ends at midnight for everyone.",
    ]
)
KEYWORD_STUFFING = " ".join(["cheap loans fast cash best rates"] * 12)
LOREM_PAGE = PROSE + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
JAVASCRIPT_NOTICE = (
    "Quarterly results: what investors should know\n"
    "JavaScript is disabled in your browser.\n"
    "Please enable JavaScript to view the full article and the interactive charts.\n" + PROSE.replace(". ", ".\n")
)
ALL_SYMBOLS = " ".join(
    random.Random(0).choice(["***", "+++", ">>>", "<<<", "~~~", "|||", "===", "@@", "^^"]) for _ in range(80)
)
TOPICS = ["stocks", "bonds", "crypto", "forex", "gold", "oil", "etf", "ipo"]
HASHTAGS = "Great day on the markets! " + " ".join(f"#{w}{year}" for w in TOPICS for year in range(2016, 2024))
CODE = (
    "function total(items) {\n  let sum = 0;\n  for (const x of items) {\n    if (x.price > 0) { sum += x.price; }\n"
    "  }\n  return sum;\n}"
)
CODE_PAGE = PROSE + "\n" + CODE
POLICY_PAGE = (
    PROSE.replace(". ", ".\n")
    + "\nPrivacy Policy\nTerms of Use\nCookie Policy\nThis site uses cookies to improve your experience."
)
NAVIGATION = ["Markets", "Stocks", "Bonds", "Funds", "ETFs", "Options", "Futures", "Crypto", "Forex", "Tools"]
NAVIGATION += ["News", "Video", "Podcasts", "Newsletters", "Login", "Register", "Help", "Careers", "Contact"]
MENU_PAGE = PROSE + "\n" + "\n".join(NAVIGATION)
SHORT_LINES = PROSE + "\n" + "\n".join(f"{w}." for w in NAVIGATION[:10])
GERMAN = (
    "Die Nordchemie AG hat im Geschäftsjahr 2024 einen Umsatz von 5864 Millionen Euro erzielt. Der Vorstand "
    "rechnet für das kommende Jahr mit einem moderaten Wachstum, obwohl die Energiepreise hoch bleiben. Die "
    "Nettoverschuldung sank deutlich, und die Dividende soll um zehn Prozent steigen. Analysten sehen die Aktie "
    "nach dem Kursrückgang der letzten Monate als günstig bewertet an."
)


CASES = {
    "short": ("Revenue rose 5% in the quarter.", "too_few_words"),
    "spam_repeated_lines": (SPAM_REPEATED_LINES, "too_many_duplicate_lines"),
    "keyword_stuffing": (KEYWORD_STUFFING, "top_2gram_too_frequent"),
    "hashtags": (HASHTAGS, "too_many_symbols"),
    "all_symbols": (ALL_SYMBOLS, "too_few_alphanumeric_words"),
    "lorem_ipsum": (LOREM_PAGE, "contains_lorem_ipsum"),
    "code": (CODE_PAGE, "contains_curly_bracket"),
    "javascript_notice": (JAVASCRIPT_NOTICE, "too_many_javascript_lines"),
    "policy_links": (POLICY_PAGE, "too_many_policy_lines"),
    "navigation_menu": (MENU_PAGE, "too_few_punctuated_lines"),
    "short_lines": (SHORT_LINES, "too_many_short_lines"),
    "reposted_paragraph": (
        "\n\n".join([PROSE, "Related stories:", FILING, PROSE]),
        "too_many_duplicate_paragraph_chars",
    ),
    "filing_paragraph": (FILING, None),
    "table_of_figures": (TABLE, None),
    "earnings_wire": (EARNINGS_WIRE, None),
    "news_prose": (PROSE, None),
    "filing_with_table": (FILING + "\n" + TABLE, None),
    "chunk_cut_mid_sentence": (FILING.replace("\n", " ")[:-60], None),  # one line, no terminal punctuation
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_rules_name_the_failure(text: str, expected: str | None) -> None:
    assert reason(text) == expected


def test_drop_carries_score_threshold_and_detail() -> None:
    drop = RULES_(SCORER("Revenue rose 5% in the quarter."), "cpt", "en")
    assert drop is not None
    assert (drop.failure, drop.score, drop.threshold) == ("too_few_words", 6.0, 50.0)
    assert drop.detail == "n_words = 6, must be >= 50 (min_words)"


def test_tables_survive_because_figure_lines_are_well_formed_and_figure_dense_text_needs_no_stop_words() -> None:
    stats = SCORER(TABLE)
    assert stats["figure_lines_ratio"] >= 0.9 and stats["terminal_punct_lines_ratio"] == 0.0
    assert stats["line_punct_ratio"] >= 0.9 and stats["short_line_ratio"] == 0.0
    assert stats["numeric_words_ratio"] >= P.min_figure_dense_ratio
    assert stats["alpha_words_ratio"] < 0.8 <= stats["alnum_words_ratio"]  # Gopher's alphabetic rule would drop it
    wire = SCORER(EARNINGS_WIRE)
    assert wire["stop_words"] < P.min_stop_words and wire["numeric_words_ratio"] >= P.min_figure_dense_ratio
    # without the figure-dense exemption the wire fails the stop-word rule
    strict = QualityRules(dataclasses.replace(P, min_figure_dense_ratio=1.01))
    assert strict(wire, "cpt", "en").failure == "too_few_stop_words"
    # a table row is a figure line even when it ends in a unit rather than a number
    lines = ("Nine mths", "Net 90 mln vs 51 mln", "Selling, general & administrative (3,912) (3,656) 7.0%")
    assert [is_figure_line(line, P.figure_line_min_numbers_ratio) for line in lines] == [False, True, True]


def test_stop_word_rule_is_english_only() -> None:
    assert reason(GERMAN, language="de") is None
    assert reason(GERMAN, language="und") == "too_few_stop_words"  # before the language stage: assumed English


def test_conversations_are_never_dropped_for_being_short_or_for_code() -> None:
    short = judged_text(
        make_record(
            kind="it",
            messages=[
                {"role": "user", "content": "What is EBITDA?"},
                {"role": "assistant", "content": "Earnings before interest, taxes, depreciation and amortization."},
            ],
        )
    )
    assert reason(short) == "too_few_words" and reason(short, kind="it") is None
    code_answer = (
        "Write a function that sums the prices of a list of items and explain it.\n\n"
        "## Solution\n### Step 1\nWe loop over the items and add each price to a running total, "
        f"which starts at zero.\n```js\n{CODE}\n```\n### Step 2\nThe function returns the total, so the caller "
        "can format it as currency or compare it with a budget."
    )
    assert reason(code_answer) == "contains_curly_bracket" and reason(code_answer, kind="it") is None
    assert reason(code_answer, kind="pref") is None


def test_conversations_with_a_generation_loop_are_dropped() -> None:
    loop = "Explain the ratio.\n\n" + " ".join(["The ratio is stable because margins are stable."] * 15)
    assert reason(loop, kind="it") == "too_many_duplicate_5grams"


def test_unknown_conversation_rule_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="too_few_wrods"):
        QualityRules(dataclasses.replace(P, conversation_rules=["too_few_wrods"]))


def test_every_rule_reads_a_computed_statistic_and_a_params_key() -> None:
    stats = SCORER(FILING)
    fields = {f.name for f in dataclasses.fields(QualityParams)}
    assert all(r.statistic in stats and r.param in fields for r in RULES)
    assert len({r.failure for r in RULES}) == len(RULES)
    assert stats == SCORER(FILING)  # deterministic, and plain JSON numbers
    json.dumps(stats)


@pytest.mark.parametrize("seed", range(20))
def test_ngram_repetition_equals_datatrove_helpers(seed: int) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i:02d}" for i in range(rng.choice([3, 8, 40]))]  # equal lengths: datatrove's "".join is injective
    words = [rng.choice(vocab) for _ in range(rng.randint(0, 400))]
    ours = ngram_repetition(words)
    for n in DUP_NGRAMS:
        assert ours[f"dup_{n}gram"] == find_all_duplicate(words, n)
    for n in TOP_NGRAMS:
        grams = get_n_grams(words, n)
        repeated = grams and max(grams.count(g) for g in set(grams)) > 1
        assert ours[f"top_{n}gram"] == (find_top_duplicate(grams) if repeated else 0)


# ------------------------------------------------------------------------------------ the stage end to end


def records() -> list[dict]:
    def truth(finance: bool, spam: bool) -> dict:
        return {"is_finance": finance, "is_spam": spam}

    short_it = [
        {"role": "user", "content": "Define beta."},
        {"role": "assistant", "content": "Sensitivity to the market."},
    ]
    return [
        make_record(FILING, source="filings", metadata=truth(True, False)),
        make_record(TABLE, source="filings", metadata=truth(True, False)),
        make_record(PROSE, source="news", metadata=truth(True, False)),
        make_record(SPAM_REPEATED_LINES, source="web", metadata=truth(False, True)),
        make_record(KEYWORD_STUFFING, source="web", metadata=truth(False, True)),
        make_record(LOREM_PAGE, source="web", metadata=truth(False, True)),
        make_record(PROSE + " The shares rose.", source="web", metadata=truth(True, False)),
        make_record("Markets closed higher today.", source="web", metadata=truth(True, False)),  # too short
        make_record(kind="it", source="it_concepts", messages=short_it, metadata={"is_finance": True}),
        make_record(kind="eval", source="eval_concepts", split="eval", messages=short_it[:1], answer="x"),
    ]


def test_stage_books_balance_and_reports_drop_rates_and_truth(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records())
    metrics = run_main(quality.main, tmp_path, project(tmp_path), [inputs], "quality")
    assert metrics["in"] == 10 == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"] == {
        "quality.too_many_duplicate_lines": 1,
        "quality.top_2gram_too_frequent": 1,
        "quality.contains_lorem_ipsum": 1,
        "quality.too_few_words": 1,
    }
    assert metrics["by_source"] == {
        "eval_concepts": {"in": 1, "dropped": 0, "rate": 0.0},
        "filings": {"in": 2, "dropped": 0, "rate": 0.0},
        "it_concepts": {"in": 1, "dropped": 0, "rate": 0.0},
        "news": {"in": 1, "dropped": 0, "rate": 0.0},
        "web": {"in": 5, "dropped": 4, "rate": 0.8},
    }
    spam = metrics["truth"]["spam"]
    assert (spam["recall"], spam["precision"], spam["targets"]) == (1.0, 0.75, 3)
    assert metrics["truth"]["finance_kept_rate"] == 5 / 6
    kept = read_records([tmp_path / "quality"]).to_pylist()
    assert all(json.loads(r["metadata"])["quality"]["n_words"] > 0 for r in kept)
    drops = pq.read_table(tmp_path / "quality" / "drops.parquet").to_pylist()
    short = next(d for d in drops if d["reason"] == "quality.too_few_words")
    assert (short["score"], short["threshold"], short["text"]) == (4.0, 50.0, "Markets closed higher today.")


def test_outputs_do_not_depend_on_task_count(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records(), rows_per_shard=3)  # 4 input shards

    def digest(name: str, tasks: int) -> str:
        run_main(quality.main, tmp_path, project(tmp_path, executor={"tasks": tasks, "workers": 1}), [inputs], name)
        return hashlib.sha256(
            b"".join(f.name.encode() + f.read_bytes() for f in sorted((tmp_path / name).iterdir()))
        ).hexdigest()

    assert digest("one", 1) == digest("three", 3)


def test_empty_input(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", [])
    metrics = run_main(quality.main, tmp_path, project(tmp_path), [inputs], "quality")
    assert (metrics["in"], metrics["kept"], metrics["dropped"], metrics["by_source"]) == (0, 0, {}, {})


# ------------------------------------------------------------------------------------ real financial text


def keep_rate(texts: list[str]) -> float:
    assert len(texts) >= 50, "too few real documents to measure a keep rate"
    return sum(reason(t) is None for t in texts) / len(texts)


def chunked(texts: list[str]) -> list[str]:
    return [c for text in texts for c in line_chunks(text)]


def every(texts: list[str], k: int) -> list[str]:
    """Every k-th text: a deterministic sample that keeps the test fast."""
    return texts[::k]


@pytest.mark.parametrize(
    ("name", "texts", "minimum"),
    [
        ("10-K MD&A, whole sections", lambda: every(mdna_cleaned(), 2), 0.90),
        ("10-K MD&A, 300-800 word chunks", lambda: every(chunked(mdna_cleaned()), 4), 0.90),
        ("Reuters stories", lambda: every([b for b in reuters_cleaned() if len(b.split()) >= P.min_words], 6), 0.90),
        ("FOMC minutes and press conferences", lambda: every(fomc_cleaned(), 2), 0.90),
        ("FOMC minutes, 300-800 word chunks", lambda: every(chunked(fomc_cleaned()), 4), 0.90),
    ],
)
def test_real_financial_text_is_kept(name: str, texts: Callable[[], list[str]], minimum: float) -> None:
    """At least 90% of real filings, news and central-bank text is kept (measured: >= 99% of each)."""
    assert keep_rate(texts()) >= minimum, name
