"""The single truth of "is this answer right", shared by the evaluation runner and the preference-pair builder.

An answer is judged in two steps: an extractor pulls the answer out of the model's raw output (or returns None when
it cannot), then a metric compares it with the gold reference. Both are looked up by the names a task YAML gives,
with their options, which are validated here because they come from data. Extraction is strict on purpose: a
`[[B]]` selection, one unambiguous label, the number after `Answer:`. There is no lenient fallback ("the answer is
probably B"), so a model that lists every label or ignores the requested format scores 0 on that item, and the
runner counts it as unparseable rather than letting a guess through. A gold reference that does not parse raises,
because silently scoring every prediction against it as wrong would hide a broken task.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import fmean
from typing import Any, TypeVar

from curation.answers import check_constraints


T = TypeVar("T")


def _norm(text: str) -> str:
    """Case- and whitespace-insensitive form, for labels and accuracy."""
    return " ".join(text.casefold().split())


def _strings(name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"option {name!r} must be a non-empty list of non-empty strings, got {value!r}")
    return list(value)


# --- extractors: raw output -> answer text, or None when unparseable ---------------------------------------------


def extract_text(output: str) -> str | None:
    return output.strip() or None


def extract_raw(output: str) -> str | None:
    """The response as written: instruction following judges its exact form (case, trailing phrase, quotes)."""
    return output or None


def extract_label(output: str, *, labels: Sequence[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The one label (as spelled in `labels`) that the output names as a whole word, case-insensitively.

    Matches are leftmost-longest, so "earnings beat" is not also a "beat"; a hyphen counts as part of a word, so
    "non-negative" and "positively" name no label. Several distinct labels mean the model hedged: None.
    """
    aliases = {} if aliases is None else aliases
    if not isinstance(aliases, Mapping) or not all(isinstance(k, str) and k.strip() for k in aliases):
        raise ValueError(f"option 'aliases' must map non-empty strings to labels, got {aliases!r}")
    labels = _strings("labels", labels)
    if unknown := sorted(str(v) for v in aliases.values() if v not in labels):
        raise ValueError(f"option 'aliases' maps to unknown label(s) {', '.join(unknown)}; labels: {labels}")
    forms: dict[str, str] = {}
    for form, label in [*((label, label) for label in labels), *aliases.items()]:
        if forms.setdefault(_norm(form), label) != label:
            raise ValueError(f"surface form {form!r} names both {forms[_norm(form)]!r} and {label!r}")
    alternation = "|".join(r"\s+".join(map(re.escape, f.split())) for f in sorted(forms, key=len, reverse=True))
    found = {forms[_norm(m)] for m in re.findall(rf"(?<![\w-])(?:{alternation})(?![\w-])", output, re.IGNORECASE)}
    return found.pop() if len(found) == 1 else None


def extract_choice(output: str, *, choices: Sequence[str]) -> str | None:
    """The letter of FinDAP's `Selection: [[A]]` format, when every bracketed selection agrees and it is a choice."""
    valid = {c.strip().upper() for c in _strings("choices", choices)}
    if not all(len(c) == 1 and c.isalpha() for c in valid):
        raise ValueError(f"option 'choices' must be single letters, got {choices!r}")
    picks = {p.upper() for p in re.findall(r"\[\[\s*([A-Za-z])\s*\]\]", output)}
    return picks.pop() if len(picks) == 1 and picks <= valid else None


# A number as finance writes it: "(12.5)" is negative, "$1,234.5 million" and "5.2 percent" carry a scale.
_SCALES = {"%": Decimal("0.01"), "thousand": Decimal(10**3), "k": Decimal(10**3), "million": Decimal(10**6),
           "mn": Decimal(10**6), "m": Decimal(10**6), "billion": Decimal(10**9), "bn": Decimal(10**9),
           "trillion": Decimal(10**12)}  # fmt: skip
_NUMBER = re.compile(
    r"(?P<open>\(\s*)?(?:(?<![\w.])(?P<sign>[-\u2212+]))?\s*(?:(?P<dollar>\$)\s*(?P<minus>[-\u2212])?)?"
    r"(?<![\w.])(?P<digits>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?!\d)"
    r"(?:\s*(?P<scale>%|(?:percent|thousand|million|billion|trillion|mn|bn|k|m)\b))?(?(open)\s*\))",
    re.IGNORECASE,
)


def _number_parts(m: re.Match[str]) -> tuple[bool, str, str]:
    """(negative, digits, canonical scale) of a `_NUMBER` match; the scale is "", "%" or a lower-case word."""
    negative = bool(m["open"] or m["minus"]) or m["sign"] in ("-", "\u2212")
    scale = (m["scale"] or "").lower()
    return negative, m["digits"], "%" if scale == "percent" else scale


def extract_number(output: str, *, prefix: str | None) -> str | None:
    """The first number on the line after the last `prefix` (any case), or with no prefix the output's last number.

    The text keeps sign, `$`, separators and scale ("$1,234.5 million", "-3.2%") for `numeric_match` to read.
    """
    if prefix is not None and (not isinstance(prefix, str) or not prefix.strip()):
        raise ValueError(f"option 'prefix' must be a non-empty string or null, got {prefix!r}")
    if prefix is not None:
        starts = [m.end() for m in re.finditer(re.escape(prefix), output, re.IGNORECASE)]
        numbers = list(_NUMBER.finditer(output[starts[-1] :].split("\n", 1)[0]))[:1] if starts else []
    else:
        numbers = list(_NUMBER.finditer(output))[-1:]
    if not numbers:
        return None
    negative, digits, scale = _number_parts(numbers[0])
    sign, dollar = "-" if negative else "", numbers[0]["dollar"] or ""
    return f"{sign}{dollar}{digits}{scale if scale in ('', '%') else ' ' + scale}"


def _entity_pairs(text: str) -> set[tuple[str, str]] | None:
    """(TYPE, entity) pairs of "ORG: A, B; PER: none"; None when no `TYPE:` segment parses at all."""
    pairs: set[tuple[str, str]] = set()
    parsed = False
    for segment in re.split(r"[;\n]", text):
        if m := re.fullmatch(r"\s*([A-Za-z][\w-]*)\s*:(.*)", segment):
            parsed = True
            names = (_norm(name).strip(" .\"'") for name in m[2].split(","))
            pairs |= {(m[1].upper(), name) for name in names if name and name != "none"}
    return pairs if parsed else None


def extract_entities(output: str) -> str | None:
    """The entity listing in canonical form: types sorted, entities lower-cased and sorted, empty types omitted."""
    if (pairs := _entity_pairs(output)) is None:
        return None
    by_type: dict[str, list[str]] = {}
    for kind, name in sorted(pairs):
        by_type.setdefault(kind, []).append(name)
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in by_type.items())


def extract_regex(output: str, *, pattern: str) -> str | None:
    """The first group of the last match: a task's answer format, when no extractor above fits."""
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as err:
        raise ValueError(f"option 'pattern' {pattern!r} is not a regular expression: {err}") from None
    if compiled.groups < 1:
        raise ValueError(f"option 'pattern' {pattern!r} needs a capture group around the answer")
    matches = list(compiled.finditer(output))
    return matches[-1][1] if matches else None


EXTRACTORS: dict[str, Callable[..., str | None]] = {
    "text": extract_text,
    "raw": extract_raw,
    "label": extract_label,
    "choice": extract_choice,
    "number": extract_number,
    "entities": extract_entities,
    "regex": extract_regex,
}


# --- metrics: extracted prediction vs gold reference -> score in [0, 1] ------------------------------------------


@dataclass(frozen=True)
class Metric:
    """An item score, and the task value over all items when it is not their mean (F1 over a whole task)."""

    item: Callable[..., float]
    corpus: Callable[..., float] | None
    options: tuple[str, ...] = ()  # required, given by the task YAML: no hidden defaults


def _accuracy(prediction: str | None, reference: str) -> float:
    return float(prediction is not None and _norm(prediction) == _norm(reference))


_UNPARSEABLE = " unparseable"  # no normalized text starts with a space, so this is never a label


def _macro_f1(predictions: list[str | None], references: list[str]) -> float:
    from sklearn.metrics import f1_score  # imported here: scipy loads slowly, and most callers never need it

    preds = [_UNPARSEABLE if p is None else _norm(p) for p in predictions]
    refs = [_norm(r) for r in references]
    return float(f1_score(refs, preds, labels=sorted(set(refs)), average="macro", zero_division=0))


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _squad_tokens(text: str) -> list[str]:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def _exact_match(prediction: str | None, reference: str) -> float:
    return float(prediction is not None and _squad_tokens(prediction) == _squad_tokens(reference))


def _contains(prediction: str | None, reference: str) -> float:
    """Whether the reference occurs in the prediction as whole words: for short facts inside a sentence."""
    if prediction is None:
        return 0.0
    return float(f" {' '.join(_squad_tokens(reference))} " in f" {' '.join(_squad_tokens(prediction))} ")


def _token_f1(prediction: str | None, reference: str) -> float:
    if prediction is None:
        return 0.0
    pred, gold = _squad_tokens(prediction), _squad_tokens(reference)
    if not pred or not gold:
        return float(pred == gold)
    return 2 * sum((Counter(pred) & Counter(gold)).values()) / (len(pred) + len(gold))


def _readings(text: str) -> set[float]:
    """Every value the text's one number may mean: "5.2%" is 5.2 or 0.052, "1.5 million" is 1.5 or 1500000.

    Words around it ("7.3 days") are ignored; a text with no number or several numbers has no reading.
    """
    if len(numbers := list(_NUMBER.finditer(text))) != 1:
        return set()
    negative, digits, scale = _number_parts(numbers[0])
    value = Decimal(digits.replace(",", "")) * (-1 if negative else 1)  # exact, so 5.2% is exactly 0.052
    return {float(value), float(value * _SCALES[scale])} if scale else {float(value)}


def _numeric_match(prediction: str | None, reference: str, *, rel_tol: float, abs_tol: float) -> float:
    """FinQA-style: right when any reading of the prediction is within tolerance of any reading of the reference."""
    for name, tol in (("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0:
            raise ValueError(f"option {name!r} must be a non-negative number, got {tol!r}")
    if not (gold := _readings(reference)):
        raise ValueError(f"reference {reference!r} does not state one number")
    pred = _readings(prediction) if prediction is not None else set()
    return float(any(math.isclose(p, g, rel_tol=rel_tol, abs_tol=abs_tol) for p in pred for g in gold))


def _entity_sets(prediction: str | None, reference: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]] | None]:
    """Gold and predicted entities; "" is the canonical listing of no entities, None an unparseable prediction."""
    gold = _entity_pairs(reference) if reference.strip() else set()
    if gold is None:
        raise ValueError(f"reference {reference!r} is not an entity listing")
    pred = None if prediction is None else _entity_pairs(prediction) if prediction.strip() else set()
    return gold, pred


def _entity_f1(prediction: str | None, reference: str) -> float:
    gold, pred = _entity_sets(prediction, reference)
    if pred is None:
        return 0.0
    return 2 * len(pred & gold) / (len(pred) + len(gold)) if pred or gold else 1.0


def _entity_micro_f1(predictions: list[str | None], references: list[str]) -> float:
    """Micro F1 = 2 TP / (predicted + gold) over all items; with no entity anywhere, the share of correct items."""
    tp = total = 0
    for prediction, reference in zip(predictions, references, strict=True):
        gold, pred = _entity_sets(prediction, reference)
        tp, total = tp + len((pred or set()) & gold), total + len(pred or set()) + len(gold)
    return 2 * tp / total if total else fmean(map(_entity_f1, predictions, references))


def _followed(prediction: str | None, reference: str) -> tuple[int, int]:
    """(constraints followed, constraints) for a JSON list of curation.answers constraints."""
    try:
        constraints = json.loads(reference)
    except json.JSONDecodeError:
        constraints = None
    if not isinstance(constraints, list) or not constraints or not all(isinstance(c, dict) for c in constraints):
        raise ValueError(f"reference {reference!r} is not a JSON list of constraints")
    violated = check_constraints(prediction, constraints) if prediction is not None else constraints
    return len(constraints) - len(violated), len(constraints)


def _if_prompt(prediction: str | None, reference: str) -> float:
    followed, total = _followed(prediction, reference)
    return float(followed == total)


def _if_instruction(prediction: str | None, reference: str) -> float:
    followed, total = _followed(prediction, reference)
    return followed / total


def _if_instruction_corpus(predictions: list[str | None], references: list[str]) -> float:
    counts = list(map(_followed, predictions, references))
    return sum(f for f, _ in counts) / sum(t for _, t in counts)


METRICS: dict[str, Metric] = {
    "accuracy": Metric(_accuracy, None),
    "macro_f1": Metric(_accuracy, _macro_f1),
    "exact_match": Metric(_exact_match, None),
    "contains": Metric(_contains, None),
    "token_f1": Metric(_token_f1, None),
    "numeric_match": Metric(_numeric_match, None, ("rel_tol", "abs_tol")),
    "entity_f1": Metric(_entity_f1, _entity_micro_f1),
    "if_prompt": Metric(_if_prompt, None),
    "if_instruction": Metric(_if_instruction, _if_instruction_corpus),
}


# --- entry points -------------------------------------------------------------------------------------------------


def _lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown {what} {name!r}{hint} (known: {', '.join(registry)})")


def _check_options(what: str, required: set[str], allowed: set[str], given: Mapping[str, Any]) -> None:
    """Raise one ValueError naming every missing and unexpected option."""
    problems = [f"missing option {name!r}" for name in sorted(required - set(given))]
    for name in sorted(set(given) - allowed):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        problems.append(f"unexpected option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        raise ValueError(f"{what}: {'; '.join(problems)} (takes: {', '.join(sorted(allowed)) or 'no options'})")


def extract(output: str, kind: str, **options: Any) -> str | None:
    """The answer in a model's output by extractor `kind`, or None when the output does not state one."""
    extractor = _lookup(EXTRACTORS, kind, "extractor kind")
    params = [p for p in inspect.signature(extractor).parameters.values() if p.kind is p.KEYWORD_ONLY]
    required = {p.name for p in params if p.default is p.empty}
    _check_options(f"extractor {kind!r}", required, {p.name for p in params}, options)
    return extractor(output, **options)


def score(
    predictions: list[str | None], references: list[str], metric: str, **options: Any
) -> tuple[list[float], float]:
    """Item scores and the task value of `metric`; an unparseable (None) prediction scores 0."""
    spec = _lookup(METRICS, metric, "metric")
    _check_options(f"metric {metric!r}", set(spec.options), set(spec.options), options)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no items to score: a task value over no items is undefined")
    items = [spec.item(p, r, **options) for p, r in zip(predictions, references, strict=True)]
    return items, spec.corpus(predictions, references, **options) if spec.corpus else fmean(items)
