"""Stage `pairs`: judged trajectories -> FinDAP's preference pairs, as records of kind `pref`.

- Final Answer Preference (FAP): for one prompt, chosen = a trajectory whose final answer is right, rejected = one
  whose final answer is wrong. When no sampled trajectory is right, `reference_when_none_correct` lets the gold
  worked answer be the chosen side (marked `chosen_from: reference`): a small policy rarely gets a program right,
  and without it most prompts would give no FAP pair at all.
- Stepwise Corrective Preference (SCP): for a wrong trajectory whose first wrong step the judge located, the prompt
  is the conversation plus the right steps before it (a final assistant message, continued by the completion), the
  chosen side is the judge's corrected step and continuation, the rejected side the trajectory's own from there.

Identical pairs of a prompt are kept once (an SCP pair at step 0 can equal a FAP pair); the kept ones are drawn
in hash(seed, prompt, sample) order, so a rerun picks the same. A prompt that gives no pair is dropped with the
reason; the counts per source, capability and pair type are in the metrics and in the audit (`audit_pairs`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curation.answers import trajectory_steps
from curation.config import load_params, params
from curation.io import IOParams, stage_paths, write_stage
from curation.progress import setup_logging
from curation.schema import (
    CAPABILITY,
    CHOSEN,
    DROP_SCHEMA,
    ID,
    KIND,
    LANGUAGE,
    MESSAGES,
    METADATA,
    RECORD_SCHEMA,
    REJECTED,
    SOURCE,
    SPLIT,
    Kind,
    Split,
    dump_metadata,
    reason,
    record_id,
)  # fmt: skip
from training.trainer import JUDGEMENTS_FILE


log = logging.getLogger("pairs")
STAGE = "pairs"
FAP, SCP = "fap", "scp"


@params
class PairsParams:
    types: list[Literal["fap", "scp"]]  # which pairs to build (FAP only vs FAP + SCP is FinDAP's ablation)
    max_fap_per_prompt: int
    max_scp_per_prompt: int
    reference_when_none_correct: bool  # no right trajectory: the gold worked answer is FAP's chosen side
    seed: int


def _order(seed: int, prompt_id: str, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(
        rows, key=lambda r: (xxhash.xxh3_64_intdigest(f"{seed}\x00{prompt_id}\x00{r['sample']}"), r["sample"])
    )


def _distinct(rows: Sequence[Mapping[str, Any]], key: Any) -> list[Mapping[str, Any]]:
    seen: dict[Any, Mapping[str, Any]] = {}
    for r in rows:
        seen.setdefault(key(r), r)
    return list(seen.values())


def fap_pairs(rows: Sequence[Mapping[str, Any]], p: PairsParams) -> list[dict[str, Any]]:
    """Final Answer Preference pairs of one prompt's judged trajectories (already in draw order)."""
    chosen = [{"text": r["output"], "from": "policy", "sample": r["sample"]} for r in
              _distinct([r for r in rows if r["correct"] is True], lambda r: r["output"])]  # fmt: skip
    rejected = _distinct([r for r in rows if r["correct"] is False], lambda r: r["output"])
    if not chosen and p.reference_when_none_correct and rows:
        chosen = [{"text": rows[0]["reference"], "from": "reference", "sample": None}]
    pairs = []
    for i, r in enumerate(rejected[: p.max_fap_per_prompt] if chosen else []):
        c = chosen[i % len(chosen)]
        pairs.append({"type": FAP, "prefix": [], "chosen": c["text"], "rejected": r["output"],
                      "chosen_from": c["from"], "chosen_sample": c["sample"], "rejected_sample": r["sample"],
                      "first_wrong_step": None})  # fmt: skip
    return pairs


def scp_pairs(rows: Sequence[Mapping[str, Any]], p: PairsParams) -> list[dict[str, Any]]:
    """Stepwise Corrective Preference pairs: right prefix, corrected step vs the wrong one, each with what follows."""
    pairs = []
    for r in rows:
        if r["correct"] is not False or r["first_wrong_step"] is None or r["correction"] is None:
            continue
        steps, k = trajectory_steps(r["output"]), r["first_wrong_step"]
        rejected = "\n".join(steps[k:])
        if r["correction"].strip() == rejected.strip():
            continue  # the "correction" repeats the wrong step: no preference to learn
        pairs.append({"type": SCP, "prefix": steps[:k], "chosen": r["correction"], "rejected": rejected,
                      "chosen_from": "judge", "chosen_sample": None, "rejected_sample": r["sample"],
                      "first_wrong_step": k})  # fmt: skip
    pairs = _distinct(pairs, lambda q: (tuple(q["prefix"]), q["chosen"], q["rejected"]))
    return list(pairs[: p.max_scp_per_prompt])


def prompt_pairs(rows: Sequence[Mapping[str, Any]], p: PairsParams) -> tuple[list[dict[str, Any]], str | None]:
    """The pairs of one prompt's judged trajectories, or none and the reason (a `pairs.*` code)."""
    rows = _order(p.seed, rows[0]["prompt_id"], rows)
    pairs = [*(fap_pairs(rows, p) if FAP in p.types else []), *(scp_pairs(rows, p) if SCP in p.types else [])]
    pairs = _distinct(pairs, lambda q: (tuple(q["prefix"]), q["chosen"], q["rejected"]))  # SCP at step 0 can be a FAP
    if pairs:
        return pairs, None
    if all(r["correct"] is None for r in rows):
        return [], reason(STAGE, "unjudged")
    if all(r["correct"] is not False for r in rows):
        return [], reason(STAGE, "all_correct")
    return [], reason(STAGE, "no_correct" if SCP not in p.types else "no_correct_no_step")


def pair_record(prompt: Mapping[str, Any], pair: Mapping[str, Any]) -> dict[str, Any]:
    """A `pref` record: the prompt (plus an assistant message holding the right prefix, for SCP), chosen, rejected."""
    messages = list(prompt["prompt"])
    chosen, rejected = pair["chosen"], pair["rejected"]
    if pair["prefix"]:
        messages.append({"role": "assistant", "content": "\n".join(pair["prefix"])})
        chosen, rejected = "\n" + chosen, "\n" + rejected  # the line break after the prefix's last step
    meta = json.loads(prompt[METADATA])
    meta[STAGE] = {k: v for k, v in pair.items() if k not in ("prefix", "chosen", "rejected")}
    meta[STAGE] |= {"prompt_id": prompt["prompt_id"], "prefix_steps": len(pair["prefix"])}
    content = json.dumps([messages, chosen, rejected], ensure_ascii=False, sort_keys=True)
    return {ID: record_id(STAGE, content), KIND: Kind.PREF.value, SOURCE: prompt[SOURCE],
            CAPABILITY: prompt[CAPABILITY], LANGUAGE: prompt[LANGUAGE], SPLIT: Split.TRAIN.value, MESSAGES: messages,
            CHOSEN: chosen, REJECTED: rejected, METADATA: dump_metadata(meta)}  # fmt: skip


def run(judgements: pa.Table, p: PairsParams) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in judgements.to_pylist():
        by_prompt[row["prompt_id"]].append(row)
    records, drops = [], []
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    for prompt_id in sorted(by_prompt):
        rows = by_prompt[prompt_id]
        pairs, why = prompt_pairs(rows, p)
        group = f"{rows[0][SOURCE]}/{rows[0][CAPABILITY]}"
        stats[group]["prompts"] += 1
        if why is not None:
            drops.append({ID: prompt_id, KIND: Kind.IT.value, SOURCE: rows[0][SOURCE], CAPABILITY: rows[0][CAPABILITY],
                          LANGUAGE: rows[0][LANGUAGE], SPLIT: Split.TRAIN.value, MESSAGES: rows[0]["prompt"],
                          METADATA: rows[0][METADATA], "reason": why,
                          "detail": f"{len(rows)} trajectories gave no pair"})  # fmt: skip
            stats[group][why] += 1
            continue
        for pair in pairs:
            records.append(pair_record(rows[0], pair))
            stats[group][pair["type"]] += 1
            stats[group][f"{pair['type']}_chosen_from_{pair['chosen_from']}"] += 1
    dropped = Counter(d["reason"] for d in drops)
    metrics = {
        "in": len(by_prompt),
        "kept": len(by_prompt) - len(drops),
        "dropped": dict(sorted(dropped.items())),
        "pairs": dict(sorted(Counter(json.loads(r[METADATA])[STAGE]["type"] for r in records).items())),
        "by_source": {g: dict(sorted(c.items())) for g, c in sorted(stats.items())},
    }
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    return table, pa.Table.from_pylist(drops, schema=DROP_SCHEMA), metrics


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, PairsParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    started = time.perf_counter()
    (judge_dir,) = paths.inputs
    records, drops, metrics = run(pq.read_table(Path(judge_dir) / JUDGEMENTS_FILE), p)
    write_stage(STAGE, records, drops, metrics, paths, io, started)
    log.info("pairs: %s from %d prompts", metrics["pairs"], metrics["kept"])


if __name__ == "__main__":
    setup_logging()
    main()
