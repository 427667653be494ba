from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import xxhash

from curation import dedup
from curation.config import load_params
from curation.dedup import Clusters, DedupParams, MinHasher, Row, candidate_pairs, plan, shingle_hashes, tokenize
from curation.io import read_records
from curation.schema import record_id
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.realdata import reuters_bodies


P = load_params("dedup", DedupParams, PARAMS)

# ------------------------------------------------------------------------------------ a synthetic finance corpus

COMPANIES = (
    "Acme Holdings|Borealis Energy|Cobalt Financial|Delmar Foods|Everline Airlines|Fennwick Retail|Granite Steel|"
    "Halcyon Pharma|Ironbridge Logistics|Juniper Software|Kestrel Mining|Lumen Utilities|Marlow Insurance|"
    "Northgate Bancorp|Oakridge Chemicals|Pioneer Semiconductors|Quarry Materials|Redwood Apparel"
)
METRICS = (
    "revenue|net sales|operating income|gross margin|adjusted EBITDA|free cash flow|net debt|operating expenses|"
    "capital expenditures|backlog|net interest income|same-store sales|cost of sales|diluted earnings per share|"
    "selling, general and administrative expenses|deferred revenue|inventory|accounts receivable"
)
MOVES = "increased|decreased|rose|fell|grew|declined|improved|contracted|expanded|softened"
DRIVERS = (
    "higher volumes in the Americas|unfavorable foreign currency translation|pricing actions taken in the spring|"
    "lower fuel costs|the integration of recently acquired businesses|weaker demand from industrial customers|"
    "a favorable product mix|elevated freight and labor costs|the timing of customer shipments|"
    "restructuring charges in Europe|strong subscriber growth|a decline in commodity prices|"
    "higher interest rates on variable-rate debt|improved manufacturing productivity|supply chain disruptions|"
    "the expiration of a key patent|increased marketing investment|lower impairment charges"
)
PERIODS = (
    "fiscal 2021|fiscal 2022|fiscal 2023|the third quarter of 2022|the fourth quarter|the first half of the year|"
    "the prior-year period|the trailing twelve months|the second quarter of 2023"
)
SEGMENTS = (
    "North America|International|Consumer|Commercial|Industrial Solutions|Specialty Products|Wealth Management|"
    "Cloud Services|Aerospace|Retail Banking|Healthcare|Energy Transition"
)
FILLER = "notably|meanwhile|overall|however|broadly|further|separately|additionally|moreover|still|again|also"
TEMPLATES = [
    "{co} reported {metric} of ${x} million for {period}, which {move} {pct}% from a year earlier, due to {driver}.",
    "In the {segment} segment, {metric} {move} by ${x} million, or {pct}%, reflecting {driver} and {driver2}.",
    "Management expects {metric} to be affected in {period} as {driver} offsets {driver2}.",
    "The Company's {metric} was ${x} billion at the end of {period}, compared with ${y} billion one year before.",
    "{co} repurchased {n} million shares for ${x} million during {period} under its authorized buyback program.",
    "Cash and equivalents stood at ${x} million, with a further ${y} million available under the revolving facility.",
    "{metric} as a percentage of sales was {pct}% in {period}, versus {pct2}% in {period2}, because of {driver}.",
    "The {segment} business recorded {metric} of ${x} million, and we anticipate {driver} to persist into {period}.",
    "Our effective tax rate was {pct}% for {period}, compared to {pct2}% in {period2}, driven by {driver}.",
    "We invested ${x} million in {metric} during {period}, primarily related to {driver} in the {segment} unit.",
    "Analysts noted that {co} {move} its outlook for {metric}, citing {driver} and {driver2} across {segment}.",
    "{co} paid dividends of ${d} per share in {period} and raised its quarterly dividend by {pct}% in {period2}.",
]


def pick(rng: random.Random, words: str) -> str:
    return rng.choice(words.split("|"))


def paragraph(rng: random.Random, n_sentences: int) -> str:
    sentences = []
    for _ in range(n_sentences):
        fill = {
            "co": pick(rng, COMPANIES),
            "metric": pick(rng, METRICS),
            "move": pick(rng, MOVES),
            "driver": pick(rng, DRIVERS),
            "driver2": pick(rng, DRIVERS),
            "period": pick(rng, PERIODS),
            "period2": pick(rng, PERIODS),
            "segment": pick(rng, SEGMENTS),
            "x": f"{rng.randint(10, 9999):,}",
            "y": f"{rng.uniform(1, 99):.1f}",
            "n": f"{rng.uniform(0.5, 40):.1f}",
            "d": f"{rng.uniform(0.05, 3):.2f}",
            "pct": f"{rng.uniform(0.5, 35):.1f}",
            "pct2": f"{rng.uniform(0.5, 35):.1f}",
        }
        sentence = rng.choice(TEMPLATES).format(**fill)
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


def shingle_set(text: str, n: int = 5, numbers: str = "keep") -> set[tuple[str, ...]]:
    tokens = tokenize(text, numbers)
    return {tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1))}


def jaccard(a: str, b: str) -> float:
    x, y = shingle_set(a), shingle_set(b)
    return len(x & y) / len(x | y)


def near_copy(rng: random.Random, text: str, target: float) -> tuple[str, float]:
    """Word edits (replace, delete, insert) until the true 5-gram Jaccard drops just below `target`."""
    words = text.split()
    j = 1.0
    while True:
        edited = list(words)
        k = rng.randrange(len(edited))
        op = rng.random()
        if op < 0.5:
            edited[k] = pick(rng, FILLER)
        elif op < 0.75:
            del edited[k]
        else:
            edited.insert(k, pick(rng, FILLER))
        j_new = jaccard(text, " ".join(edited))
        if j_new < target:
            return (" ".join(edited), j_new) if j == 1.0 or target - j_new < j - target else (" ".join(words), j)
        words, j = edited, j_new


def figure_variant(rng: random.Random, text: str, every: bool) -> str:
    """The same text with every figure redrawn, or only one."""
    spans = list(re.finditer(r"\d+(?:[.,]\d+)*", text))
    chosen = spans if every else [rng.choice(spans)]
    out = text
    for m in reversed(chosen):
        new = m.group()
        while new == m.group():
            new = re.sub(r"\d", lambda _: str(rng.randint(0, 9)), m.group())
        out = out[: m.start()] + new + out[m.end() :]
    return out


def corpus(seed: int = 7, n_originals: int = 300) -> list[dict[str, Any]]:
    """Originals (filings/news), exact and near copies (web), figure-only variants, IT copies and eval items."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    texts = {}
    for i in range(n_originals):
        wid = f"w{i:04d}"
        texts[wid] = paragraph(rng, rng.randint(14, 22))
        meta = {"world_id": wid, "is_finance": True}
        records.append(make_record(texts[wid], source="filings" if i % 2 else "news", metadata=meta))
    originals = list(texts)
    for k, wid in enumerate(rng.sample(originals, 40)):  # exact copies, two of them copied twice
        for copy in range(1 if k >= 2 else 2):
            meta = {"world_id": f"{wid}-x{copy}", "is_duplicate_of": wid, "duplicate_type": "exact"}
            records.append(make_record(texts[wid], source="web" if copy == 0 else "general", metadata=meta))
    for wid in rng.sample(originals, 60):  # near copies at true 5-gram Jaccard 0.85..0.97
        text, j = near_copy(rng, texts[wid], rng.uniform(0.86, 0.97))
        meta = {"world_id": f"{wid}-n", "is_duplicate_of": wid, "duplicate_type": "near", "near_dup_jaccard": j}
        records.append(make_record(text, source="web", metadata=meta))
    for k, wid in enumerate(rng.sample(originals, 30)):  # figure-only variants: all figures, or just one
        meta = {"world_id": f"{wid}-f", "figure_variant_of": wid}
        records.append(make_record(figure_variant(rng, texts[wid], every=k % 2 == 0), source="filings", metadata=meta))
    turns = [
        {"role": "user", "content": "What drives net interest income?"},
        {"role": "assistant", "content": "Rates."},
    ]
    copy = {"world_id": "it0-x", "is_duplicate_of": "it0", "duplicate_type": "exact"}  # a copy across sources
    records.append(make_record(kind="it", source="it_concepts", messages=turns, metadata={"world_id": "it0"}))
    records.append(make_record(kind="it", source="it_tasks", messages=turns, metadata=copy))
    leaked = texts[originals[0]]  # an eval item equal to a training text: decontamination's business, not ours
    records.append(make_record(leaked, source="eval_concepts", split="eval", metadata={"world_id": "e0"}))
    records.append(make_record(leaked, source="eval_tasks", split="eval", metadata={"world_id": "e1"}))
    return records


def rows(records: list[dict[str, Any]]) -> list[Row]:
    return [Row(r["id"], r["source"], r["kind"], r["split"], r["text"] or json.dumps(r["messages"])) for r in records]


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return corpus()


# ------------------------------------------------------------------------------------------------ signatures


def test_tokenize_lowercases_strips_edge_punctuation_and_keeps_digits() -> None:
    text = "Revenue rose 5.2% to $1,234.5 million (U.S.) year-over-year; “strong” demand."
    expected = ["revenue", "rose", "5.2", "to", "1,234.5", "million", "u.s", "year-over-year", "strong", "demand"]
    assert tokenize(text) == expected
    assert tokenize(text, "normalize")[2:5] == ["0", "to", "0"]
    assert tokenize("  ... — ") == []


def test_shingle_hashes_are_xxh64_of_space_joined_ngrams() -> None:
    tokens = tokenize("Net débt fell by 12% in fiscal 2023 as cash grew")
    expected = [xxhash.xxh64_intdigest(" ".join(tokens[i : i + 5]).encode()) for i in range(len(tokens) - 4)]
    assert shingle_hashes(tokens, 5).tolist() == expected
    assert shingle_hashes(["only", "three", "words"], 5).tolist() == [xxhash.xxh64_intdigest(b"only three words")]
    assert shingle_hashes([], 5).size == 0


def test_signature_equals_datasketch_affine64() -> None:
    from datasketch import MinHash

    rng = random.Random(1)
    for _ in range(5):
        tokens = tokenize(paragraph(rng, 6))
        shingles = [" ".join(tokens[i : i + 5]).encode() for i in range(len(tokens) - 4)]
        reference = MinHash(num_perm=112, seed=P.seed, scheme="affine64", hashfunc=xxhash.xxh64_intdigest)
        reference.update_batch(shingles)
        assert np.array_equal(MinHasher(P).signature(shingle_hashes(tokens, 5)), reference.hashvalues)


def random_pair(rng: np.random.Generator, j: float, size: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of 64-bit shingle hashes with Jaccard exactly `shared / (shared + 2 * own)`."""
    shared = round(size * 2 * j / (1 + j))
    pool = rng.integers(0, 2**64, size=2 * size, dtype=np.uint64)
    own = size - shared
    return pool[:size], np.concatenate([pool[:shared], pool[size : size + own]])


def test_estimated_jaccard_tracks_true_jaccard() -> None:
    rng = np.random.default_rng(0)
    hasher = MinHasher(P)
    z = []
    for j in np.linspace(0.2, 0.98, 40):
        for _ in range(5):
            a, b = random_pair(rng, j)
            true = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
            est = float((hasher.signature(a) == hasher.signature(b)).mean())
            sigma = (true * (1 - true) / 112) ** 0.5
            assert abs(est - true) <= 4 * sigma + 0.01, (true, est)
            z.append((est - true) / sigma)
    # standardized errors: mean ~0 (unbiased) and mean |z| ~ sqrt(2/pi) = 0.8 (binomial variance, 112 draws)
    assert abs(np.mean(z)) < 0.2
    assert 0.6 < np.mean(np.abs(z)) < 1.0


def test_lsh_collision_curve_is_an_s_curve() -> None:
    rng = np.random.default_rng(1)
    hasher = MinHasher(P)

    def collision_rate(j: float, n: int = 200) -> float:
        hits = 0
        for _ in range(n):
            a, b = random_pair(rng, j)
            i, _ = candidate_pairs(np.stack([hasher.signature(a), hasher.signature(b)]), P.bands, P.rows)
            hits += len(i)
        return hits / n

    # theory, 14 x 8: 1-(1-s^8)^14 = 0.999 at 0.9, 0.87 at 0.8, 0.053 at 0.5, 0.0009 at 0.3
    assert collision_rate(0.9) >= 0.97
    assert 0.7 <= collision_rate(0.8) <= 0.97
    assert collision_rate(0.5) <= 0.15
    assert collision_rate(0.3) <= 0.02


def test_clusters_keep_smallest_index_and_refuse_figure_variants() -> None:
    clusters = Clusters(5)
    for i, j in [(3, 4), (1, 4), (0, 2)]:
        clusters.union(i, j)
    assert [clusters.representative(i) for i in range(5)] == [0, 1, 0, 1, 1]
    # 0 and 1 differ only in figures (same masked hash 7, token hashes 1 and 2); 2 is a near copy of both
    guarded = Clusters(3, [(7, 1), (7, 2), (8, 3)])
    assert guarded.union(0, 2) and not guarded.union(1, 2) and guarded.refused == 1
    assert [guarded.representative(i) for i in range(3)] == [0, 1, 0]


# -------------------------------------------------------------------------------------------------- plan


def test_planted_duplicates_are_found_and_figure_variants_survive(records: list[dict[str, Any]]) -> None:
    result = plan(rows(records), P)
    by_id = {r["id"]: r for r in records}
    world = {json.loads(r["metadata"]).get("world_id"): r["id"] for r in records}
    meta = {r["id"]: json.loads(r["metadata"]) for r in records}
    near = [i for i, m in meta.items() if m.get("duplicate_type") == "near" and m["near_dup_jaccard"] >= 0.85]
    exact = [i for i, m in meta.items() if m.get("duplicate_type") == "exact"]
    variants = [i for i, m in meta.items() if m.get("figure_variant_of")]
    cluster = {i: d["cluster"] for i, d in result.table.items()}
    same = lambda i: cluster[i] == cluster[world[meta[i]["is_duplicate_of"]]]  # noqa: E731
    assert len(near) >= 50 and sum(map(same, near)) / len(near) >= 0.95
    assert all(map(same, exact))
    dropped = [i for i in cluster if cluster[i] != i and by_id[i]["split"] == "train"]
    originals = {m.get("is_duplicate_of") for m in meta.values()}
    precision = sum(1 for i in dropped if "is_duplicate_of" in meta[i] or meta[i]["world_id"] in originals)
    assert precision / len(dropped) >= 0.95
    assert all(cluster[i] == i and cluster[world[meta[i]["figure_variant_of"]]] != i for i in variants)
    # the keep rule: the filing or news original wins over its web copy
    assert all(by_id[cluster[i]]["source"] in ("filings", "news") for i in exact + near if by_id[i]["kind"] == "cpt")
    assert result.summary["eval_excluded"] == 2 and result.summary["figure_unions_refused"] >= 1


def test_plan_is_deterministic_and_order_independent(records: list[dict[str, Any]]) -> None:
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    assert plan(rows(records), P).table == plan(rows(shuffled), P).table


def test_digits_matter_and_normalizing_them_merges_figure_variants(records: list[dict[str, Any]]) -> None:
    world = {json.loads(r["metadata"]).get("world_id"): r["id"] for r in records}
    variants = {
        r["id"]: world[m["figure_variant_of"]]
        for r in records
        if "figure_variant_of" in (m := json.loads(r["metadata"]))
    }

    def merged(numbers: str) -> int:
        table = plan(rows(records), dataclasses.replace(P, numbers=numbers)).table
        return sum(1 for i, original in variants.items() if table[i]["cluster"] == table[original]["cluster"])

    assert merged("distinct") == 0
    assert 0 < merged("keep") < len(variants)  # one changed figure in 300 words still has 5-gram Jaccard ~0.97
    assert merged("normalize") == len(variants)


def test_only_near_kinds_get_near_dedup() -> None:
    text = paragraph(random.Random(5), 12)
    copy, _ = near_copy(random.Random(6), text, 0.9)
    turns = lambda t: [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"}]  # noqa: E731
    convs = [make_record(kind="it", source=s, messages=turns(t)) for s, t in (("a", text), ("b", copy))]
    assert all(d["cluster_size"] == 1 for d in plan(rows(convs), P).table.values())
    docs = [make_record(text, source="a"), make_record(copy, source="b")]
    assert all(d["cluster_size"] == 2 for d in plan(rows(docs), P).table.values())


# -------------------------------------------------------------------------------------------------- stage


def test_stage_drops_duplicates_with_reasons_and_annotates_every_record(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    inputs = write_input(tmp_path / "in", records)
    metrics = run_main(dedup.main, tmp_path, project(tmp_path), [inputs], "dedup")
    n_exact = 42 + 1  # 40 originals copied, two of them twice, and one IT conversation
    assert metrics["in"] == len(records) == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dropped"]["dedup.exact_duplicate"] == n_exact
    truth = metrics["truth"]
    assert truth["exact_recall"] == 1.0 and truth["near_recall"] >= 0.95 and truth["precision"] >= 0.95
    assert truth["figure_variants_kept"] == 1.0 and truth["figure_variants"] == 30
    assert metrics["dedup"]["hash_scheme"]["num_perm"] == 112 and metrics["dedup"]["hash_scheme"]["numpy"]

    kept = read_records([tmp_path / "dedup"]).to_pylist()
    dropped = pq.read_table(tmp_path / "dedup" / "drops.parquet").to_pylist()
    every = [(r, False) for r in kept] + [(r, True) for r in dropped]
    annotations = {r["id"]: json.loads(r["metadata"])["dedup"] for r, _ in every}
    assert set(annotations) == {r["id"] for r in records}
    train = [(r, d) for r, d in every if r["split"] == "train"]
    members = Counter(annotations[r["id"]]["cluster"] for r, _ in train)
    kept_ids = {r["id"] for r, d in train if not d}
    assert set(members) == kept_ids  # exactly one kept record per cluster, and it names the cluster
    assert all(annotations[r["id"]]["cluster_size"] == members[annotations[r["id"]]["cluster"]] for r, _ in train)
    for row in dropped:
        d = annotations[row["id"]]
        assert d["cluster"] in row["detail"]
        if row["reason"] == "dedup.near_duplicate":
            assert row["score"] == d["jaccard"] and row["threshold"] == P.threshold
        else:
            assert row["reason"] == "dedup.exact_duplicate" and d["exact_of"] in row["detail"]
    evals = [r for r, d in every if r["split"] == "eval"]
    assert len(evals) == 2 and all(not annotations[r["id"]]["clustered"] for r in evals)
    assert all(annotations[r["id"]]["cluster"] == r["id"] for r in evals)


def test_outputs_do_not_depend_on_task_count(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", corpus(seed=11, n_originals=60), rows_per_shard=25)

    def digest(name: str, tasks: int) -> str:
        run_main(dedup.main, tmp_path, project(tmp_path, executor={"tasks": tasks, "workers": 1}), [inputs], name)
        files = sorted((tmp_path / name).iterdir())
        return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()

    assert digest("one", 1) == digest("three", 3) == digest("again", 1)


def test_empty_input(tmp_path: Path) -> None:
    inputs = write_input(tmp_path / "in", [])
    metrics = run_main(dedup.main, tmp_path, project(tmp_path), [inputs], "dedup")
    assert metrics["in"] == metrics["kept"] == 0 and metrics["dropped"] == {}


# ---------------------------------------------------------------------------------------------- real data


def test_reuters_near_duplicate_stories(tmp_path: Path) -> None:
    # about 3,800 stories, whitespace folded; the files escape the end mark as "&#3;", so it stays in the text
    bodies = [re.sub(r"\s+", " ", b).replace(" Reuter \x03", "").strip() for b in reuters_bodies(files=4)]
    seen: Counter[str] = Counter()
    records = []
    for body in bodies:
        record = make_record(body, source="news")
        record["id"] = record_id("news", body, seen[body])  # identical stories get occurrence ids, as ingest does
        seen[body] += 1
        records.append(record)
    inputs = write_input(tmp_path / "in", records)
    metrics = run_main(dedup.main, tmp_path, project(tmp_path), [inputs], "dedup")
    assert metrics["in"] == len(records) == metrics["kept"] + sum(metrics["dropped"].values())
    assert metrics["dedup"]["clusters_with_duplicates"] >= 10
    assert metrics["dropped"].get("dedup.near_duplicate", 0) >= 10
    kept = read_records([tmp_path / "dedup"]).to_pylist()
    clusters = Counter(json.loads(r["metadata"])["dedup"]["cluster"] for r in kept)
    assert max(clusters.values()) == 1 and set(clusters) == {r["id"] for r in kept}
