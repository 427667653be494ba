"""Stage `mixture`: the FinRec training mixtures, one per curriculum group, plus two side sets: the base-model data
(general text and instructions, for the embedded default's stand-in for an instruct model) and preference prompts.

FinRec trains continual-pretraining (CPT) text and instruction (IT) data jointly, in one run, with the CPT side
randomly downsampled to the size of the IT side (`cpt_to_it_ratio: 1.0`). The curriculum splits training into ordered
groups (FinDAP: first concepts and tasks, then reasoning), each with its own mixture; a record belongs to the first
group that lists its capability. Before the ratio, per-source weights (2.0 doubles a source by repetition, 0.5 halves
it), per-source budgets and an optional capability balance shape each group.

Every choice is made by sorting on a hash of (seed, id): deterministic, independent of input order and shard count,
and stable when a source grows (a record chosen at 10% stays chosen at 20%). Sizes are counted in `unit`: records,
or words when no tokenizer exists yet (the tokenizer is trained on the curated data, after this stage's inputs).
A repeated record is written once per copy, under a new id derived from the original id and the copy number.

Every written record says in `metadata.mixture.role` what it is for: `train` (a curriculum group), `base` or
`preference`. A side-set record may also be in a training group, so it gets its own id (from the role and the original
id). Records not chosen are drops with the step that removed them; evaluation items leave the training mixture as
`mixture.eval_item`. The books balance as in = (kept - copies) + dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from curation.config import load_params, params
from curation.io import IOParams, read_records, stage_paths, write_stage
from curation.progress import setup_logging
from curation.schema import (
    CAPABILITY,
    DROP_SCHEMA,
    ID,
    KIND,
    MESSAGES,
    METADATA,
    SOURCE,
    SPLIT,
    TEXT,
    Capability,
    Kind,
    Split,
    reason,
    record_id,
)


STAGE = "mixture"
TRAIN, BASE, PREFERENCE = "train", "base", "preference"


@params
class GroupParams:
    name: str
    capabilities: list[Capability]


@params
class PreferenceParams:
    capabilities: list[Capability]
    max_prompts: int


@params
class BaseParams:
    capabilities: list[Capability]
    budget: int | None


@params
class MixtureParams:
    seed: int
    unit: Literal["records", "words"]
    cpt_to_it_ratio: float | None
    balance_capabilities: bool
    source_weights: dict[str, float]
    budgets: dict[str, int]
    groups: list[GroupParams]
    base: BaseParams
    preference: PreferenceParams


def sizes(table: pa.Table) -> pl.DataFrame:
    """The narrow frame every decision is made on: id, kind, source, capability, split and size in words."""
    words_text = pl.col(TEXT).fill_null("").str.split(" ").list.len()
    words_turns = pl.col(MESSAGES).list.eval(pl.element().struct.field("content").str.split(" ").list.len()).list.sum()
    frame = pl.from_arrow(table.select([ID, KIND, SOURCE, CAPABILITY, SPLIT, TEXT, MESSAGES]))
    return frame.with_columns(words=pl.when(pl.col(KIND) == Kind.CPT).then(words_text).otherwise(words_turns)).drop(
        TEXT, MESSAGES
    )


def _order(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Rows in a seeded pseudo-random order that depends only on (seed, id, copy)."""
    key = pl.concat_str([pl.lit(f"{seed}:"), pl.col(ID), pl.lit(":"), pl.col("copy").cast(pl.String)])
    return frame.with_columns(_key=key.hash(seed=0)).sort("_key", ID).drop("_key")


def _take_until(frame: pl.DataFrame, budget: float, unit: str, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split into (chosen, rest): a seeded sample whose size in `unit` just reaches `budget`."""
    ordered = _order(frame, seed)
    before = pl.int_range(pl.len()) if unit == "records" else pl.col("words").cum_sum() - pl.col("words")
    ordered = ordered.with_columns(_before=before)
    chosen = ordered.filter(pl.col("_before") < budget).drop("_before")
    rest = ordered.filter(pl.col("_before") >= budget).drop("_before")
    return chosen, rest


def _size(frame: pl.DataFrame, unit: str) -> int:
    return frame.height if unit == "records" else int(frame["words"].sum() or 0)


def _weighted(frame: pl.DataFrame, weights: dict[str, float], seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply source weights: floor(w) copies of every record plus one more copy for a seeded share frac(w)."""
    weight = pl.col(SOURCE).replace_strict(weights, default=1.0, return_dtype=pl.Float64)
    frame = frame.with_columns(_w=weight)
    whole = frame.with_columns(_n=pl.col("_w").floor().cast(pl.Int64))
    draw = pl.concat_str([pl.lit(f"{seed}:w:"), pl.col(ID)]).hash(seed=0) % 1_000_000 / 1_000_000
    whole = whole.with_columns(_n=pl.col("_n") + (draw < (pl.col("_w") - pl.col("_w").floor())).cast(pl.Int64))
    dropped = whole.filter(pl.col("_n") == 0).drop("_w", "_n")
    kept = whole.filter(pl.col("_n") > 0).with_columns(copy=pl.int_ranges(0, pl.col("_n"))).explode("copy")
    return kept.drop("_w", "_n"), dropped


def select(frame: pl.DataFrame, p: MixtureParams) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Choose the mixture: returns (kept rows with `group` and `copy`, dropped rows with `failure`)."""
    drops = []
    frame = frame.with_columns(copy=pl.lit(0, pl.Int64))
    is_eval = pl.col(SPLIT) == Split.EVAL
    drops.append(frame.filter(is_eval).with_columns(failure=pl.lit("eval_item")))
    frame = frame.filter(~is_eval)
    group_of = {}
    for g in reversed(p.groups):  # the first group listing a capability wins
        group_of.update(dict.fromkeys(map(str, g.capabilities), g.name))
    frame = frame.with_columns(group=pl.col(CAPABILITY).replace_strict(group_of, default=None, return_dtype=pl.String))
    drops.append(frame.filter(pl.col("group").is_null()).with_columns(failure=pl.lit("no_group")))
    frame = frame.filter(pl.col("group").is_not_null())

    frame, weighted_out = _weighted(frame, p.source_weights, p.seed)
    drops.append(weighted_out.with_columns(failure=pl.lit("weighted_out")))

    kept = []
    for (source,), part in frame.partition_by(SOURCE, as_dict=True, maintain_order=True).items():
        if source in p.budgets:
            part, over = _take_until(part, p.budgets[source], p.unit, p.seed)
            drops.append(over.with_columns(failure=pl.lit("over_budget")))
        kept.append(part)
    frame = pl.concat(kept) if kept else frame

    chosen = []
    for g in p.groups:
        group = frame.filter(pl.col("group") == g.name)
        if p.balance_capabilities:
            group = _balance(group, p, drops)
        cpt, it = group.filter(pl.col(KIND) == Kind.CPT), group.filter(pl.col(KIND) != Kind.CPT)
        if p.cpt_to_it_ratio is not None:
            cpt, rest = _take_until(cpt, p.cpt_to_it_ratio * _size(it, p.unit), p.unit, p.seed)
            drops.append(rest.with_columns(failure=pl.lit("cpt_downsampled")))
        chosen += [cpt, it]
    kept_frame = pl.concat(chosen).sort(ID, "copy")
    dropped = pl.concat([d.select(ID, "copy", "failure") for d in drops]).sort(ID, "copy")
    return kept_frame, dropped


def _balance(group: pl.DataFrame, p: MixtureParams, drops: list[pl.DataFrame]) -> pl.DataFrame:
    """Within each kind, cut every capability down to the smallest capability's size."""
    parts = []
    for (_,), by_kind in group.partition_by(KIND, as_dict=True, maintain_order=True).items():
        caps = by_kind.partition_by(CAPABILITY, maintain_order=True)
        floor = min(_size(c, p.unit) for c in caps)
        for cap in caps:
            cap_kept, rest = _take_until(cap, floor, p.unit, p.seed)
            drops.append(rest.with_columns(failure=pl.lit("capability_balance")))
            parts.append(cap_kept)
    return pl.concat(parts)


def preference_prompts(frame: pl.DataFrame, p: PreferenceParams, seed: int) -> pl.DataFrame:
    """Prompts for on-policy sampling: training IT records of the declared capabilities, a seeded sample."""
    wanted = frame.filter(
        (pl.col(SPLIT) == Split.TRAIN)
        & (pl.col(KIND) == Kind.IT)
        & pl.col(CAPABILITY).is_in([str(c) for c in p.capabilities])
    ).with_columns(copy=pl.lit(0, pl.Int64))
    return _take_until(wanted, p.max_prompts, "records", seed)[0].with_columns(group=pl.lit(PREFERENCE))


def base_records(frame: pl.DataFrame, p: BaseParams, unit: str, seed: int) -> pl.DataFrame:
    """The base model's data: training records of the declared capabilities, a seeded sample up to `budget`."""
    wanted = frame.filter(
        (pl.col(SPLIT) == Split.TRAIN) & pl.col(CAPABILITY).is_in([str(c) for c in p.capabilities])
    ).with_columns(copy=pl.lit(0, pl.Int64))
    if p.budget is not None:
        wanted = _take_until(wanted, p.budget, unit, seed)[0]
    return wanted.with_columns(group=pl.lit(BASE))


def materialize(table: pa.Table, kept: pl.DataFrame) -> pa.Table:
    """Full records for the chosen (id, copy, group) rows; copies get new ids, metadata records the choice."""
    rows = {r[ID]: r for r in table.to_pylist()}
    out = []
    for rid, copy, group in kept.select(ID, "copy", "group").iter_rows():
        record = dict(rows[rid])
        meta = json.loads(record[METADATA])
        role = group if group in (BASE, PREFERENCE) else TRAIN
        meta[STAGE] = {"group": group, "role": role, "copy": copy, "original_id": rid}
        record[METADATA] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        if role != TRAIN:  # a side-set record may also be in a training group: a distinct id
            record[ID] = record_id(role, rid)
        elif copy:
            record[ID] = record_id(record[SOURCE], rid, copy)
        out.append(record)
    return pa.Table.from_pylist(out, schema=table.schema)


def run(table: pa.Table, p: MixtureParams) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    frame = sizes(table)
    kept, dropped = select(frame, p)
    prefs = preference_prompts(frame, p.preference, p.seed)
    base = base_records(frame, p.base, p.unit, p.seed)
    records = materialize(table, pl.concat([kept, base.select(kept.columns), prefs.select(kept.columns)]))
    drop_rows = dropped.join(frame.select(ID), on=ID).unique([ID, "copy"], maintain_order=True)
    # a record dropped only as an extra copy (over budget) while another copy is kept is not a lost record
    lost = drop_rows.filter(~pl.col(ID).is_in(kept[ID].implode()))
    lost = lost.unique(ID, keep="first", maintain_order=True)
    by_id = {r[ID]: r for r in table.to_pylist()}
    drops = []
    for rid, failure in lost.select(ID, "failure").iter_rows():
        row = dict(by_id[rid])
        row.update(reason=reason(STAGE, failure), detail=f"not in the mixture: {failure}", raw=None)
        drops.append(row)
    drops_table = pa.Table.from_pylist(drops, schema=DROP_SCHEMA)
    n_unique = kept[ID].n_unique()
    metrics = {
        "in": table.num_rows,
        "kept": kept.height,
        "copies": kept.height - n_unique,
        "dropped": dict(sorted(lost.group_by("failure").len().iter_rows())),
        "preference_prompts": prefs.height,
        "base": group_metrics(base, frame_unit=p.unit)[BASE],
        "groups": group_metrics(kept, frame_unit=p.unit),
    }
    metrics["dropped"] = {reason(STAGE, k): v for k, v in metrics["dropped"].items()}
    if table.num_rows != n_unique + lost.height:
        raise RuntimeError(
            f"mixture: accounting broken: {table.num_rows} in != {n_unique} kept + {lost.height} dropped"
        )
    return records, drops_table, metrics


def group_metrics(kept: pl.DataFrame, frame_unit: str) -> dict[str, Any]:
    """Per group: records and words by kind and capability, and the CPT:IT ratio actually reached."""
    out: dict[str, Any] = {}
    for (group,), part in kept.partition_by("group", as_dict=True, maintain_order=True).items():
        by = part.group_by(KIND, CAPABILITY).agg(records=pl.len(), words=pl.col("words").sum()).sort(KIND, CAPABILITY)
        cpt = _size(part.filter(pl.col(KIND) == Kind.CPT), frame_unit)
        it = _size(part.filter(pl.col(KIND) != Kind.CPT), frame_unit)
        out[group] = {
            "records": part.height,
            "words": int(part["words"].sum()),
            "cpt_to_it": round(cpt / it, 4) if it else None,
            "by": {f"{k}/{c}": {"records": r, "words": w} for k, c, r, w in by.iter_rows()},
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, MixtureParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    start = time.perf_counter()
    records, drops, metrics = run(read_records(paths.inputs), p)
    write_stage(STAGE, records, drops, metrics, paths, io, start)


if __name__ == "__main__":
    setup_logging()
    main()
