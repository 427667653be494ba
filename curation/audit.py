"""Stage `audit`: what curation and the mixture did, per stage, capability, source and kind, checked and plotted.

The audit reads every stage folder it is given through DuckDB, which reads only the columns a query names: the
`text` and `messages` columns are never touched, so an audit over millions of records costs metadata, not text.
It checks the books across the chain (every record that entered a stage is kept or dropped by it, exactly once;
for the mixture, through `metadata.mixture.original_id`) and fails the stage, naming the records, if they do not
balance. It writes a Markdown report, PNG plots, CSV plot data for `dvc plots`, and metrics for `dvc metrics`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from curation.config import load_params, params
from curation.io import DROPS_FILE, RECORDS_GLOB, stage_paths, write_metrics
from curation.progress import setup_logging


log = logging.getLogger(__name__)
STAGE = "audit"
MIXTURE, PACK, PAIRS = "mixture", "pack", "pairs"


@params
class AuditParams:
    histogram_bins: int
    show_examples: int


class AccountingError(RuntimeError):
    """Records were lost or double-counted between two stages."""


def connect(folders: Sequence[Path]) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """An in-memory DuckDB with views `<stage>` and `<stage>_drops` for each stage folder (named after the folder)."""
    con = duckdb.connect()
    stages = []
    for folder in folders:
        name = folder.name
        if any(folder.glob(RECORDS_GLOB)):
            con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{folder / RECORDS_GLOB}')")
            stages.append(name)
        if (folder / DROPS_FILE).exists():
            con.execute(f"CREATE VIEW \"{name}_drops\" AS SELECT * FROM read_parquet('{folder / DROPS_FILE}')")
        if any(folder.glob("rows-*.parquet")):
            rows = folder / "rows-*.parquet"
            con.execute(f"CREATE VIEW \"{name}_rows\" AS SELECT * FROM read_parquet('{rows}', filename = true)")
    return con, stages


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql).to_arrow_table())


def check_accounting(con: duckdb.DuckDBPyConnection, stages: Sequence[str], examples: int) -> dict[str, Any]:
    """For each stage after the first: every input id is kept or dropped exactly once, and nothing else comes out.

    One full join of input ids against output id counts finds the three ways the books break: an input id that
    came out nowhere (`missing`), one that came out twice (kept and dropped, say: `twice`), and an output id that
    never went in (`unknown`).
    """
    report = {}
    problems = []
    for before, after in itertools.pairwise(stages):
        kept = (
            f"SELECT metadata->>'$.mixture.original_id' AS id FROM \"{after}\" "
            "WHERE metadata->>'$.mixture.role' = 'train' AND (metadata->>'$.mixture.copy')::INT = 0"
            if after == MIXTURE
            else f'SELECT id FROM "{after}"'
        )
        sql = (
            "SELECT CASE WHEN i.id IS NULL THEN 'unknown' WHEN o.n IS NULL THEN 'missing' ELSE 'twice' END "
            "AS problem, "
            f'coalesce(i.id, o.id) AS id FROM (SELECT id FROM "{before}") i FULL JOIN '
            f'(SELECT id, count(*) AS n FROM ({kept} UNION ALL SELECT id FROM "{after}_drops") GROUP BY id) o '
            "ON i.id = o.id WHERE i.id IS NULL OR o.n IS NULL OR o.n > 1"
        )
        bad = frame(con, sql)
        counts = dict(bad.group_by("problem").len().iter_rows())
        report[after] = {k: counts.get(k, 0) for k in ("missing", "twice", "unknown")}
        for (problem,), part in bad.sort("id").partition_by("problem", as_dict=True).items():
            problems.append(f"{after}: {problem} {part.height:,}, e.g. {', '.join(part['id'].head(examples))}")
    if problems:
        raise AccountingError("accounting broken between stages:\n  " + "\n  ".join(sorted(problems)))
    return report


def funnel(con: duckdb.DuckDBPyConnection, stages: Sequence[str]) -> pl.DataFrame:
    """Records per stage, source, capability, kind and outcome (`kept` or the drop reason); the mixture's side sets
    (`base`, `preference`) are their own outcomes, not curriculum records."""
    parts = []
    for stage in stages:
        kept = "'kept'"
        if stage == MIXTURE:
            kept = "CASE metadata->>'$.mixture.role' WHEN 'train' THEN 'kept' ELSE metadata->>'$.mixture.role' END"
        parts.append(
            f"SELECT '{stage}' AS stage, source, capability, kind, {kept} AS outcome, count(*) AS records "
            f'FROM "{stage}" GROUP BY ALL'
        )
        parts.append(
            f"SELECT '{stage}' AS stage, source, capability, kind, reason AS outcome, count(*) AS records "
            f'FROM "{stage}_drops" GROUP BY ALL'
        )
    order = {s: i for i, s in enumerate(stages)}
    result = frame(con, " UNION ALL ".join(parts))
    return result.with_columns(order=pl.col("stage").replace_strict(order)).sort(
        "order", "source", "capability", "kind", "outcome"
    )


def mixture_shares(con: duckdb.DuckDBPyConnection, has_pack: bool) -> pl.DataFrame:
    """Per training group and capability: CPT and IT records, packed tokens, and the share of the group (by tokens
    once packed, else by records)."""
    shares = frame(
        con,
        "SELECT metadata->>'$.mixture.group' AS \"group\", capability, "
        "count(*) FILTER (kind = 'cpt') AS cpt_records, count(*) FILTER (kind != 'cpt') AS it_records "
        "FROM mixture WHERE metadata->>'$.mixture.role' != 'preference' GROUP BY ALL",
    ).with_columns(records=pl.col("cpt_records") + pl.col("it_records"))
    size = "records"
    if has_pack:
        tokens = frame(
            con,
            "SELECT regexp_extract(filename, 'rows-(.*)[.]parquet', 1) AS \"group\", capability, "
            "sum(n)::BIGINT AS tokens FROM (SELECT filename, unnest(capabilities) AS capability, "
            "unnest(seq_lengths) AS n FROM pack_rows) GROUP BY ALL",
        )
        shares = shares.join(tokens, on=["group", "capability"], how="left")
        size = "tokens"
    share = (pl.col(size) / pl.col(size).sum().over("group")).round(4)
    return shares.with_columns(share=share).drop("records").sort("group", "capability")


def score_columns(con: duckdb.DuckDBPyConnection, stage: str) -> pl.DataFrame:
    """Language and domain scores of every record the last curation stage saw (kept and dropped), by source."""
    paths = "['$.language.score', '$.domain.score']"  # one JSON parse per record for both scores
    parts = [
        f"SELECT source, s[1]::DOUBLE AS language_score, s[2]::DOUBLE AS domain_score, '{outcome}' AS outcome "
        f'FROM (SELECT source, json_extract_string(metadata, {paths}) AS s FROM "{view}")'
        for view, outcome in ((stage, "kept"), (f"{stage}_drops", "dropped"))
    ]
    return frame(con, " UNION ALL ".join(parts))


def duplicate_clusters(con: duckdb.DuckDBPyConnection, stage: str) -> pl.DataFrame:
    """How many near-duplicate clusters of each size the dedup stage found."""
    sql = (
        "SELECT size, count(*) AS clusters FROM (SELECT metadata->>'$.dedup.cluster' AS c, count(*) AS size FROM "
        f'(SELECT metadata FROM "{stage}" UNION ALL SELECT metadata FROM "{stage}_drops") '
        "WHERE metadata->>'$.dedup.cluster' IS NOT NULL GROUP BY 1) GROUP BY 1 ORDER BY 1"
    )
    return frame(con, sql)


def contamination(con: duckdb.DuckDBPyConnection, stage: str) -> pl.DataFrame:
    """Training records the decontamination stage dropped or cut, per benchmark it found in them."""
    sql = (
        "SELECT benchmark, count(*) FILTER (outcome = 'dropped') AS dropped, "
        "count(*) FILTER (outcome = 'kept') AS cut "
        "FROM (SELECT unnest(from_json(metadata->'$.decontam.benchmarks', '[\"VARCHAR\"]')) AS benchmark, outcome "
        f"FROM (SELECT metadata, 'kept' AS outcome FROM \"{stage}\" UNION ALL "
        f"SELECT metadata, 'dropped' AS outcome FROM \"{stage}_drops\")) GROUP BY 1 ORDER BY 1"
    )
    return frame(con, sql)


def preference_pairs(con: duckdb.DuckDBPyConnection, stage: str) -> pl.DataFrame:
    """Preference pairs per source, capability, pair type (FAP/SCP) and where the chosen side came from, with the
    mean length of the right prefix an SCP pair starts from and of each side."""
    sql = (
        "SELECT source, capability, metadata->>'$.pairs.type' AS pair_type, "
        "metadata->>'$.pairs.chosen_from' AS chosen_from, count(*) AS pairs, "
        "round(avg((metadata->>'$.pairs.prefix_steps')::INT), 2) AS mean_prefix_steps, "
        "round(avg(length(chosen)), 1) AS mean_chosen_chars, round(avg(length(rejected)), 1) AS mean_rejected_chars "
        f'FROM "{stage}" GROUP BY ALL ORDER BY ALL'
    )
    return frame(con, sql)


def plot(funnel_frame: pl.DataFrame, shares: pl.DataFrame, scores: pl.DataFrame, bins: int, folder: Path) -> None:
    """funnel.png (records kept per stage and capability), mixture.png (group composition), scores.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = (
        funnel_frame.filter(pl.col("outcome") == "kept")
        .group_by("order", "stage", "capability")
        .agg(pl.col("records").sum())
    )
    pivot = kept.sort("order", "capability").pivot("capability", index="stage", values="records").fill_null(0)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = None
    for cap in [c for c in pivot.columns if c != "stage"]:
        ax.bar(pivot["stage"], pivot[cap], bottom=bottom, label=cap)
        bottom = pivot[cap] if bottom is None else bottom + pivot[cap]
    ax.set(title="Records kept after each stage, by capability", ylabel="records")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "funnel.png", dpi=120)
    plt.close(fig)

    if shares.height:  # without a mixture among the inputs there is no mixture.png
        groups = shares["group"].unique(maintain_order=True).to_list()
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
        for ax, group in zip(axes[0], groups, strict=True):
            part = shares.filter(pl.col("group") == group)
            ax.pie(part["share"], labels=part["capability"], autopct="%1.0f%%", textprops={"fontsize": 8})
            ax.set_title(f"mixture '{group}'")
        fig.tight_layout()
        fig.savefig(folder / "mixture.png", dpi=120)
        plt.close(fig)

    if not scores.height:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, column in zip(axes, ("language_score", "domain_score"), strict=True):
        for outcome in ("kept", "dropped"):
            values = scores.filter(pl.col("outcome") == outcome)[column].drop_nulls().to_numpy()
            if len(values):
                ax.hist(values, bins=bins, range=(0, 1), alpha=0.6, label=outcome)
        ax.set(title=column.replace("_", " "), xlabel="score", ylabel="records")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "scores.png", dpi=120)
    plt.close(fig)


def markdown(title: str, table: pl.DataFrame) -> str:
    """A Markdown table (GitHub style) with a heading."""
    if not table.height:
        return f"## {title}\n\n(none)\n"
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |\n"
        for row in table.iter_rows()
    )
    return f"## {title}\n\n{header}{body}"


def run(folders: Sequence[Path], p: AuditParams) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """Every audit table and the metrics; raises AccountingError if the books do not balance."""
    con, stages = connect(folders)
    curation = [s for s in stages if s not in (MIXTURE, PACK, PAIRS)]
    accounting = check_accounting(con, [s for s in stages if s not in (PACK, PAIRS)], p.show_examples)
    tables = {"funnel": funnel(con, stages)}
    has_views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    tables["scores"] = score_columns(con, curation[-1]) if curation else pl.DataFrame()
    if MIXTURE in stages:
        tables["mixture"] = mixture_shares(con, "pack_rows" in has_views)
    if "dedup" in stages:
        tables["duplicate_clusters"] = duplicate_clusters(con, "dedup")
    if "decontam" in stages:
        tables["contamination"] = contamination(con, "decontam")
    if PAIRS in stages:
        tables["preference_pairs"] = preference_pairs(con, PAIRS)
    by_stage = tables["funnel"].group_by("order", "stage", "outcome").agg(pl.col("records").sum()).sort("order")
    metrics: dict[str, Any] = {"accounting": accounting, "stages": {}}
    for (stage,), part in by_stage.partition_by("stage", as_dict=True, maintain_order=True).items():
        counts = dict(part.select("outcome", "records").iter_rows())
        kept = counts.pop("kept", 0)
        side = {role: counts.pop(role) for role in ("base", "preference") if role in counts}
        metrics["stages"][stage] = {"kept": kept, "dropped": sum(counts.values()), "by_reason": counts, **side}
    if "mixture" in tables:
        groups = tables["mixture"].partition_by("group", as_dict=True, maintain_order=True).items()
        metrics["mixture_share"] = {g: dict(part.select("capability", "share").iter_rows()) for (g,), part in groups}
        if "tokens" in tables["mixture"].columns:  # what the report says each model was trained on
            metrics["mixture_tokens"] = {
                g: dict(part.select("capability", "tokens").iter_rows()) for (g,), part in groups
            }
    if "preference_pairs" in tables:
        metrics["preference_pairs"] = {
            f"{source}/{capability}/{kind}/{origin}": n
            for source, capability, kind, origin, n in tables["preference_pairs"].select(pl.nth(range(5))).iter_rows()
        }
    return metrics, tables


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, AuditParams, paths.params)
    start = time.perf_counter()
    metrics, tables = run(paths.inputs, p)
    paths.output.mkdir(parents=True, exist_ok=True)
    plot(tables["funnel"], tables.get("mixture", pl.DataFrame()), tables["scores"], p.histogram_bins, paths.output)
    funnel_table = tables["funnel"].drop("order")
    by = {
        "capability": funnel_table.group_by("stage", "capability", "kind", "outcome", maintain_order=True),
        "source": funnel_table.group_by("stage", "source", "outcome", maintain_order=True),
    }
    sections = [markdown(f"Funnel by {k}", g.agg(pl.col("records").sum())) for k, g in by.items()]
    sections += [
        markdown(name.replace("_", " ").capitalize(), t)
        for name, t in tables.items()
        if name not in ("funnel", "scores")
    ]
    images = "".join(f"![{f.stem}]({f.name})\n" for f in sorted(paths.output.glob("*.png")))
    report = f"# Audit of {', '.join(f.name for f in paths.inputs)}\n\n{images}\n"
    (paths.output / "report.md").write_text(report + "\n".join(sections), encoding="utf-8")
    if paths.plots is not None:
        paths.plots.mkdir(parents=True, exist_ok=True)
        kept = (
            funnel_table.filter(pl.col("outcome") == "kept")
            .group_by("stage", maintain_order=True)
            .agg(pl.col("records").sum())
        )
        kept.write_csv(paths.plots / "audit_funnel.csv")
        if "mixture" in tables:
            tables["mixture"].select("group", "capability", "share").write_csv(paths.plots / "audit_mixture.csv")
    write_metrics(metrics, paths.metrics)
    log.info(
        "audit: %d stages balance; report in %s (%.1f s)",
        len(metrics["stages"]),
        paths.output,
        time.perf_counter() - start,
    )


if __name__ == "__main__":
    setup_logging()
    main()
