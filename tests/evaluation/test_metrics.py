"""Every extractor and metric on hand-made outputs, including the ones a model uses to game a lenient checker."""

from __future__ import annotations

import json

import pytest

from evaluation.metrics import EXTRACTORS, METRICS, extract, score


SENTIMENT = ["positive", "negative", "neutral"]
TOL = {"rel_tol": 0.01, "abs_tol": 0.0}


def item(metric: str, prediction: str | None, reference: str, **options: object) -> float:
    return score([prediction], [reference], metric, **options)[0][0]


# --- extractors ---------------------------------------------------------------------------------------------------


def test_text_and_raw() -> None:
    assert extract("  Madrid \n", "text") == "Madrid"
    assert extract(" \n ", "text") is None
    assert extract("  HELLO \n", "raw") == "  HELLO \n"  # instruction following judges the response as written
    assert extract("", "raw") is None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("positive", "positive"),
        ("The sentiment of this headline is Positive.", "positive"),
        ("NEGATIVE", "negative"),
        ("Positive. Investors will read it as positive news.", "positive"),  # one label, named twice
        ("positive, negative or neutral", None),  # hedging over every label earns nothing
        ("Neutral to negative", None),
        ("The outlook is positively framed", None),  # whole words only: "positively" is not "positive"
        ("non-negative cash flow", None),  # a hyphen joins words: "non-negative" is not "negative"
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_label(output: str, expected: str | None) -> None:
    assert extract(output, "label", labels=SENTIMENT) == expected


def test_label_multi_word_and_aliases() -> None:
    labels = ["earnings beat", "beat", "CEO change"]
    assert extract("This is an earnings beat.", "label", labels=labels) == "earnings beat"  # not also "beat"
    assert extract("A clear beat", "label", labels=labels) == "beat"
    assert extract("ceo\n change", "label", labels=labels) == "CEO change"  # spelled as in `labels`
    aliases = {"bullish": "positive", "bearish": "negative"}
    assert extract("Bullish for shareholders", "label", labels=SENTIMENT, aliases=aliases) == "positive"
    assert extract("bullish but positive", "label", labels=SENTIMENT, aliases=aliases) == "positive"
    assert extract("bullish, yet negative", "label", labels=SENTIMENT, aliases=aliases) is None
    with pytest.raises(ValueError, match="'aliases' maps to unknown label"):
        extract("x", "label", labels=SENTIMENT, aliases={"bullish": "up"})
    with pytest.raises(ValueError, match="option 'labels'"):
        extract("x", "label", labels=[])


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The margin widened.\nSelection: [[B]]", "B"),
        ("Selection: [[ b ]]", "B"),
        ("Option [[A]] fits the facts. Selection: [[A]]", "A"),
        ("Either [[A]] or [[B]]", None),  # disagreeing selections
        ("Selection: [[D]]", None),  # not among the choices
        ("The answer is B", None),  # no fallback to loose parsing
        ("Selection: [[AB]]", None),
    ],
)
def test_choice(output: str, expected: str | None) -> None:
    assert extract(output, "choice", choices=["A", "B", "C"]) == expected


@pytest.mark.parametrize(
    ("output", "prefix", "expected"),
    [
        ("Answer: $1,234.5 million.", "Answer:", "$1,234.5 million"),
        ("Step 1: 10 - 3 = 7\nAnswer: 7", "Answer:", "7"),
        ("Answer: 3\nWait, let me check.\nAnswer: 4.5 (up from 3)", "Answer:", "4.5"),  # last prefix, first number
        ("answer: -3.2%", "Answer:", "-3.2%"),
        ("Answer: unknown\n42", "Answer:", None),  # no number on the prefix's line
        ("The result is 42", "Answer:", None),  # prefix absent
        ("Revenue of 10 rose to 12.5 percent", None, "12.5%"),
        ("The loss was (12.5) in 2019-2020 terms, net $ -5 bn", None, "-$5 bn"),
        ("a loss of (12.5)", None, "-12.5"),
        ("years 2019-2020", None, "2020"),  # a range's dash is not a minus sign
        ("No figures here.", None, None),
    ],
)
def test_number(output: str, prefix: str | None, expected: str | None) -> None:
    assert extract(output, "number", prefix=prefix) == expected


def test_entities() -> None:
    canonical = "LOC: madrid; ORG: cobaltine systems; PER: hannah farrell"
    assert extract("ORG: Cobaltine Systems; PER: Hannah Farrell; LOC: Madrid", "entities") == canonical
    assert extract("per:  Hannah   Farrell\nORG: Acme, Borealis, acme.\nLOC: none", "entities") == (
        "ORG: acme, borealis; PER: hannah farrell"
    )
    assert extract("ORG: none; PER: none; LOC: none", "entities") == ""  # parsed: a prediction of no entities
    assert extract("MONEY: $5 million", "entities") == "MONEY: $5 million"  # unknown types are kept
    assert extract("I found no entities.", "entities") is None


def test_regex() -> None:
    assert extract("Rating: hold ... Rating: buy", "regex", pattern=r"Rating: (\w+)") == "buy"
    assert extract("nothing", "regex", pattern=r"Rating: (\w+)") is None
    with pytest.raises(ValueError, match="needs a capture group"):
        extract("x", "regex", pattern=r"\d+")
    with pytest.raises(ValueError, match="not a regular expression"):
        extract("x", "regex", pattern="(")


def test_extract_options_and_kinds() -> None:
    with pytest.raises(ValueError, match=r"unknown extractor kind 'lable'; did you mean 'label'\?"):
        extract("x", "lable")
    with pytest.raises(ValueError, match="missing option 'labels'"):
        extract("x", "label")
    with pytest.raises(ValueError, match=r"unexpected option 'prefx' \(did you mean 'prefix'\?\)"):
        extract("x", "number", prefx="Answer:")
    with pytest.raises(ValueError, match="unexpected option 'labels'"):
        extract("x", "text", labels=SENTIMENT)


# --- metrics ------------------------------------------------------------------------------------------------------


def test_accuracy_and_macro_f1() -> None:
    refs = ["positive", "positive", "negative", "negative", "neutral"]
    preds = ["Positive", "negative", "negative", None, "neutral "]
    items, value = score(preds, refs, "macro_f1")
    assert items == [1.0, 0.0, 1.0, 0.0, 1.0]
    # positive: P 1/1, R 1/2 -> 2/3; negative: P 1/2, R 1/2 -> 1/2; neutral: 1; the unparseable one is a miss
    assert value == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert score(preds, refs, "accuracy")[1] == pytest.approx(3 / 5)
    # a prediction outside the references' labels only costs recall; it never becomes a class of its own
    assert score(["bullish", "negative"], ["positive", "negative"], "macro_f1")[1] == pytest.approx(1 / 2)


def test_squad_metrics() -> None:
    assert item("exact_match", "The Federal Reserve.", "federal reserve") == 1.0
    assert item("exact_match", "Fed", "federal reserve") == 0.0
    assert item("token_f1", "The net income rose sharply", "net income rose") == pytest.approx(6 / 7)
    assert item("token_f1", "revenue", "net income") == 0.0
    assert item("token_f1", "the", "a") == 1.0  # both empty after normalization
    assert item("contains", "It is based in Madrid, Spain.", "Madrid") == 1.0
    assert item("contains", "It is based in Madrid, Spain.", "Mad") == 0.0  # whole words only
    assert [item(m, None, "x") for m in ("exact_match", "token_f1", "contains")] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("5.2", "5.2%", 1.0),
        ("0.052", "5.2%", 1.0),
        ("520%", "5.2", 1.0),  # a bare reference also matches its percentage
        ("$1,234.50", "1234.5", 1.0),
        ("1.5 million", "1500000", 1.0),
        ("-12.5", "(12.5)", 1.0),
        ("12.5", "-12.5", 0.0),
        ("100.99", "100", 1.0),  # |diff| 0.99 <= 1% of 100.99
        ("101.02", "100", 0.0),  # |diff| 1.02 > 1% of 101.02
        ("99", "100", 1.0),  # exactly 1% of the larger value: inclusive
        ("98.99", "100", 0.0),
        ("7.30", "7.3 days", 1.0),  # a unit in the reference is not part of the number
        ("3,600 hours", "3600", 1.0),
        ("between 3 and 5", "5", 0.0),  # several numbers: no reading
        ("about five", "5", 0.0),
        (None, "5", 0.0),
    ],
)
def test_numeric_match(prediction: str | None, reference: str, expected: float) -> None:
    assert item("numeric_match", prediction, reference, **TOL) == expected


def test_numeric_match_rejects_bad_data() -> None:
    with pytest.raises(ValueError, match="reference 'N/A' does not state one number"):
        item("numeric_match", "5", "N/A", **TOL)
    with pytest.raises(ValueError, match="option 'rel_tol' must be a non-negative number"):
        item("numeric_match", "5", "5", rel_tol=-0.1, abs_tol=0.0)


def test_numeric_extraction_round_trip() -> None:
    """What `number` extracts, `numeric_match` reads: the two share one number grammar."""
    for output, reference in [("Answer: $1,234.5 million.", "1234500000"), ("so -3.2%", "-0.032")]:
        assert item("numeric_match", extract(output, "number", prefix=None), reference, **TOL) == 1.0


def test_entity_f1() -> None:
    gold = ["ORG: Cobaltine Systems; PER: Hannah Farrell; LOC: Madrid", "ORG: Acme; PER: none; LOC: Oslo",
            "ORG: Borealis; PER: none; LOC: none", "ORG: none; PER: none; LOC: none"]  # fmt: skip
    raw = ["ORG: cobaltine systems; PER: Hannah Farrel; LOC: none", "LOC: oslo\norg: ACME", "Borealis", "ORG: none"]
    preds = [extract(r, "entities") for r in raw]
    assert preds == ["ORG: cobaltine systems; PER: hannah farrel", "LOC: oslo; ORG: acme", None, ""]
    items, micro = score(preds, gold, "entity_f1")
    assert items == [pytest.approx(2 * 1 / (2 + 3)), 1.0, 0.0, 1.0]  # partial, reordered, unparseable, empty
    assert micro == pytest.approx(2 * 3 / ((2 + 2 + 0 + 0) + (3 + 2 + 1 + 0)))  # 2 TP / (predicted + gold)
    assert score([None, ""], ["ORG: none", "ORG: none"], "entity_f1")[1] == 0.5  # no entity anywhere: item mean
    with pytest.raises(ValueError, match="not an entity listing"):
        item("entity_f1", "", "Borealis")


def test_instruction_following() -> None:
    three = json.dumps([{"type": "keyword", "word": "money"}, {"type": "lowercase"}, {"type": "max_words", "n": 5}])
    one = json.dumps([{"type": "no_commas"}])
    preds = ["money talks loudly", "Money talks", "money, not words"]
    assert score(preds, [three, three, one], "if_prompt") == ([1.0, 0.0, 0.0], pytest.approx(1 / 3))
    items, value = score(preds, [three, three, one], "if_instruction")
    assert items == [1.0, pytest.approx(2 / 3), 0.0]
    assert value == pytest.approx((3 + 2 + 0) / (3 + 3 + 1))  # instruction level: not the mean of the items
    assert score([None], [three], "if_instruction") == ([0.0], 0.0)
    with pytest.raises(ValueError, match="not a JSON list of constraints"):
        item("if_prompt", "x", "lowercase")


def test_score_rejects_bad_calls() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'; did you mean 'accuracy'\?"):
        score(["a"], ["a"], "acuracy")
    with pytest.raises(ValueError, match="missing option 'abs_tol'; missing option 'rel_tol'"):
        score(["5"], ["5"], "numeric_match")
    with pytest.raises(ValueError, match=r"missing option 'rel_tol'; unexpected option 'rel_tl' \(did you mean"):
        score(["5"], ["5"], "numeric_match", rel_tl=0.01, abs_tol=0.0)
    with pytest.raises(ValueError, match="unexpected option 'rel_tol'"):
        score(["a"], ["a"], "accuracy", rel_tol=0.01)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        score(["a", "b"], ["a"], "accuracy")
    with pytest.raises(ValueError, match="no items to score"):
        score([], [], "accuracy")


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_unparseable_scores_zero(metric: str) -> None:
    reference = {"numeric_match": "5", "entity_f1": "ORG: Acme", "if_prompt": '[{"type": "lowercase"}]',
                 "if_instruction": '[{"type": "lowercase"}]'}.get(metric, "positive")  # fmt: skip
    options = TOL if metric == "numeric_match" else {}
    assert score([None], [reference], metric, **options) == ([0.0], 0.0)


def test_registries_are_complete() -> None:
    assert sorted(EXTRACTORS) == ["choice", "entities", "label", "number", "raw", "regex", "text"]
    assert METRICS["numeric_match"].options == ("rel_tol", "abs_tol")
