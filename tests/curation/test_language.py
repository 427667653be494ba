from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from curation import language
from curation.config import ConfigError, load_params
from curation.io import read_records
from curation.language import Identifier, LanguageParams, decide
from curation.schema import METADATA
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.realdata import GUM, UD, mdna_sections, sentence_files, sentence_groups, word_chunks


P = load_params("language", LanguageParams, PARAMS)

EN = "Revenue rose five percent in the third quarter as margins improved and net debt fell to its lowest level."
DE = "Der Umsatz stieg im dritten Quartal um fünf Prozent, und die Nettoverschuldung sank auf den tiefsten Stand."
FR = "Le chiffre d'affaires a augmenté de cinq pour cent au troisième trimestre et la dette nette a baissé."
ES = "Los ingresos aumentaron un cinco por ciento en el tercer trimestre y la deuda neta bajó a su nivel más bajo."
ZH = "公司第三季度收入增长百分之五，利润率提高，净债务降至最低水平。"  # noqa: RUF001 (Chinese commas)


@pytest.mark.parametrize(("text", "lang"), [(EN, "en"), (DE, "de"), (FR, "fr"), (ES, "es"), (ZH, "zh")])
def test_identifier_names_the_language_with_confidence(text: str, lang: str) -> None:
    detected, score = Identifier(P)(text)
    assert detected == lang and score > 0.95


def test_identifier_reads_only_the_prefix_and_abstains_on_empty_text() -> None:
    mixed = EN + " " + DE * 20
    assert Identifier(P)(mixed)[0] == "de"
    assert Identifier(dataclasses.replace(P, max_chars=len(EN)))(mixed)[0] == "en"
    assert Identifier(P)(" \n ") == ("und", 0.0)


def test_candidate_list_restricts_the_answer_and_unknown_codes_fail() -> None:
    italian = "Il fatturato è cresciuto del cinque per cento nel terzo trimestre."
    assert Identifier(P)(italian)[0] == "it"
    assert Identifier(dataclasses.replace(P, languages=["en", "de", "fr", "es"]))(italian)[0] in {"es", "fr"}
    with pytest.raises(ConfigError, match="xx"):
        Identifier(dataclasses.replace(P, languages=["en", "xx"]))(EN)


def test_identifier_copies_without_its_model() -> None:
    identify = Identifier(P)
    identify(EN)  # loads the model
    assert copy.deepcopy(identify)._model is None and len(pickle.dumps(identify)) < 1000
    assert copy.deepcopy(identify)(DE)[0] == "de"


def judged(lang: str, score: float) -> Document:
    return Document(text="", id="x", metadata={METADATA: {"language": {"lang": lang, "score": score}}})


def test_decide_reasons() -> None:
    assert decide(judged("en", 0.9), P) is None
    drop = decide(judged("de", 0.99), P)
    assert drop is not None and drop.failure == "not_kept_language" and "de" in drop.detail and drop.score == 0.99
    unsure = decide(judged("en", 0.2), P)
    assert unsure is not None and unsure.failure == "low_confidence"
    assert (unsure.score, unsure.threshold) == (0.2, P.min_score) and P.min_score > 0.2
    assert decide(judged("ar", 0.05), P).failure == "low_confidence"  # no features: not named a language
    assert decide(judged("de", 0.99), dataclasses.replace(P, keep=["en", "de"])) is None


def records() -> list[dict]:
    turns = [{"role": "user", "content": "What happened to revenue?"}, {"role": "assistant", "content": EN}]
    return [
        *(
            make_record(f"{EN} Item {i}.", source="web", language="und", metadata={"true_language": "en"})
            for i in range(6)
        ),
        make_record(DE, source="web", language="und", metadata={"true_language": "de"}),
        make_record(FR, source="web", language="und", metadata={"true_language": "fr"}),
        make_record(ES, source="web", language="und", metadata={"true_language": "es"}),
        make_record(ZH, source="web", language="und", metadata={"true_language": "zh"}),
        make_record(
            "Q3 EPS 1.23", source="web", language="und", metadata={"true_language": "en"}
        ),  # too short to tell
        make_record(EN, source="filings"),  # no truth label: not counted in the truth metrics
        make_record(kind="it", source="it_concepts", messages=turns),
        make_record(kind="eval", source="eval_concepts", split="eval", messages=[{"role": "user", "content": DE}]),
    ]


def test_stage_books_balance_sets_the_language_column_and_measures_truth(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records())
    metrics = run_main(language.main, tmp_path, project(tmp_path), [inputs], "language")
    assert metrics["in"] == 14 == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"] == {"language.not_kept_language": 4, "language.low_confidence": 1}
    assert metrics["detected"] == {"de": 2, "en": 9, "es": 1, "fr": 1, "zh": 1}
    truth = metrics["truth"]
    assert truth["labeled"] == 11 and truth["accuracy"] == 1.0
    # the unsure English record was dropped: precision 4/5 of dropping non-English, recall 4/4
    assert truth["drop_not_kept_language"]["precision"] == 0.8 and truth["drop_not_kept_language"]["recall"] == 1.0

    kept = read_records([tmp_path / "language"]).to_pylist()
    assert {r["language"] for r in kept} == {"en", "de"}  # the German eval item is kept: eval is never dropped
    web = next(r for r in kept if r["source"] == "web")
    assert web["language"] == "en" and json.loads(web["metadata"])["language"]["declared"] == "und"
    drops = pq.read_table(tmp_path / "language" / "drops.parquet").to_pylist()
    assert sorted((d["language"], d["reason"]) for d in drops) == [
        ("de", "language.not_kept_language"),
        ("en", "language.low_confidence"),
        ("es", "language.not_kept_language"),
        ("fr", "language.not_kept_language"),
        ("zh", "language.not_kept_language"),
    ]


def test_keep_must_be_a_candidate(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records())
    params = project(tmp_path, language={"languages": ["de", "fr"], "keep": ["en"]})
    with pytest.raises(ConfigError, match="keep"):
        run_main(language.main, tmp_path, params, [inputs], "language")


def real_documents() -> list[tuple[str, str]]:
    """(text, language): five-sentence documents of UD de/fr/es/zh and GUM English, and 200-word 10-K MD&A chunks."""
    docs = [(doc, name[:2]) for name, s in sentence_files(UD).items() for doc in sentence_groups(s, 5)]
    docs += [(doc, "en") for s in sentence_files(GUM).values() for doc in sentence_groups(s, 5)]
    docs += [(c, "en") for text in mdna_sections()[:20] for c in word_chunks(text, 200, shortest=1)[:20]]
    return docs


def test_real_documents_are_identified_and_non_english_dropped() -> None:
    docs = real_documents()
    identify = Identifier(P)
    verdicts = [(lang, *identify(text)) for text, lang in docs]
    accuracy = sum(truth == detected for truth, detected, _ in verdicts) / len(verdicts)
    dropped = [truth for truth, detected, score in verdicts if decide(judged(detected, score), P) is not None]
    n_foreign = sum(truth != "en" for truth, _, _ in verdicts)
    assert len(docs) > 2000 and n_foreign > 1200
    assert accuracy >= 0.995, accuracy
    assert sum(t != "en" for t in dropped) == n_foreign  # recall 1.0
    assert sum(t == "en" for t in dropped) <= 2  # English documents lost: at most 2 of ~1,000


def test_outputs_do_not_depend_on_task_count_and_reruns_are_identical(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", records(), rows_per_shard=4)  # 4 input shards

    def digest(name: str, tasks: int) -> str:
        params = project(tmp_path, executor={"tasks": tasks, "workers": 1})
        run_main(language.main, tmp_path, params, [inputs], name)
        files = sorted((tmp_path / name).iterdir())
        return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()

    assert digest("one", 1) == digest("three", 3) == digest("again", 1)
