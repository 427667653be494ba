"""Stage `report`: FinEval across the models the pipeline made, per capability, similar vs novel, the FinDAP way.

It reads each model's evaluate metrics and the audit's packed tokens per mixture group and capability, and writes
`report.md` (capability and task tables with the change against the baseline model, and the tokens per capability
each model was trained on), two plots, a CSV for `dvc plots`, and `data/metrics/report.json` for `dvc metrics diff`
across experiments.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from curation.config import load_params, params
from curation.io import stage_paths, write_metrics
from curation.progress import setup_logging
from evaluation.evaluate import EvaluateParams


log = logging.getLogger("report")


@params
class ReportParams:
    baseline: str  # the model the others are compared with


def trained_tokens(audit: Mapping[str, Any], groups: Sequence[str]) -> dict[str, int]:
    """Packed tokens per capability over the mixture groups a model was trained on."""
    total: Counter[str] = Counter()
    for group in groups:
        total.update(audit.get("mixture_tokens", {}).get(group, {}))
    return dict(sorted(total.items()))


def comparison(results: Mapping[str, Mapping[str, Any]], baseline: str) -> dict[str, dict[str, float]]:
    """Rows (capabilities, then similar, novel, overall) x models; every value a 0-1 score."""
    rows: dict[str, dict[str, float]] = {}
    for model, r in results.items():
        for capability, s in r["capabilities"].items():
            rows.setdefault(capability, {})[model] = s["score"]
        for group, s in r["groups"].items():
            rows.setdefault(group, {})[model] = s
        rows.setdefault("overall", {})[model] = r["overall"]
    if baseline not in results:
        raise ValueError(f"params.yaml report.baseline {baseline!r} is not an evaluated model ({', '.join(results)})")
    return rows


def _cell(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if base is None else f"{value:.3f} ({value - base:+.3f})"


def _against_baseline(rows: Mapping[str, Mapping[str, float]], models: Sequence[str], baseline: str) -> list[str]:
    """A Markdown table: a row per name, a column per model, each cell with its change against the baseline."""
    lines = ["| capability | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 1)]
    for name, values in rows.items():
        cells = [_cell(values.get(m), None if m == baseline else values.get(baseline)) for m in models]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(
    results: Mapping[str, Mapping[str, Any]],
    rows: Mapping[str, Mapping[str, float]],
    baseline: str,
    tokens: Mapping[str, Mapping[str, int]],
) -> str:
    models = list(results)
    lines = [
        "# FinEval report",
        "",
        f"Scores are 0-1 (a capability's score is the mean of its tasks' scores); in brackets the change "
        f"against `{baseline}`. `similar`: task types seen in training; `novel`: unseen ones (FinDAP).",
        "",
        "## By capability",
        "",
        *_against_baseline(rows, models, baseline),
    ]
    lines += [
        "",
        "## By task",
        "",
        "Each cell: score (unparseable outputs).",
        "",
        "| task | capability | group | mode | metric | n | " + " | ".join(models) + " |",
        "|" + "---|" * (len(models) + 6),
    ]
    first = results[models[0]]["tasks"]
    for task, t in sorted(first.items(), key=lambda kv: (kv[1]["capability"], kv[0])):
        cells = [
            f"{r['tasks'][task]['score']:.3f} ({r['tasks'][task]['unparsed']})" if task in r["tasks"] else "-"
            for r in results.values()
        ]
        lines.append(
            f"| {task} | {t['capability']} | {t['group']} | {t['mode']} | {t['metric']} | {t['n']} | "
            + " | ".join(cells)
            + " |"
        )
    losses = {
        capability: {m: r["capabilities"][capability]["target_nll"] for m, r in results.items()}
        for capability in results[baseline]["capabilities"]
        if all("target_nll" in r["capabilities"].get(capability, {}) for r in results.values())
    }
    if any(losses.values()):
        lines += [
            "",
            "## Loss on the perfect response, by capability",
            "",
            "Mean loss per token of each item's target (lower is better; in brackets the change against the "
            "baseline): it ranks models still too weak to answer in the asked form.",
            "",
            *_against_baseline(losses, models, baseline),
        ]
    capabilities = sorted({c for t in tokens.values() for c in t})
    lines += [
        "",
        "## What each model was trained on",
        "",
        "Packed tokens per capability over its mixture groups "
        "(from the audit); a run with `max_steps` sees only part of them.",
        "",
        "| model | " + " | ".join(capabilities) + " | total |",
        "|" + "---|" * (len(capabilities) + 2),
    ]
    for model, t in tokens.items():
        lines.append(
            f"| {model} | " + " | ".join(f"{t.get(c, 0):,}" for c in capabilities) + f" | {sum(t.values()):,} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Mapping[str, Mapping[str, float]], models: Sequence[str], path: Path) -> None:
    """Grouped bars: one group per capability (and similar/novel/overall), one bar per model."""
    fig = Figure(figsize=(1.2 * len(rows) + 2, 4))  # no pyplot: no global state, no display backend
    ax = fig.subplots()
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        xs = [i + k * width for i in range(len(rows))]
        ax.bar(xs, [rows[name].get(model, 0.0) for name in rows], width, label=model)
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(rows))], list(rows), rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title("FinEval by capability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: the file depends only on the data


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__.splitlines()[0])
    setup_logging()
    p = load_params("report", ReportParams, paths.params)
    models = load_params("evaluate", EvaluateParams, paths.params).models
    evaluate_dir, audit_file = paths.inputs
    results = {m: json.loads((evaluate_dir / f"{m}.json").read_text()) for m in models}
    audit = json.loads(audit_file.read_text())
    tokens = {m: trained_tokens(audit, e.trained_on) for m, e in models.items()}
    rows = comparison(results, p.baseline)
    paths.output.mkdir(parents=True, exist_ok=True)
    (paths.output / "report.md").write_text(markdown(results, rows, p.baseline, tokens), encoding="utf-8")
    plot(rows, list(results), paths.output / "capabilities.png")
    if paths.plots:
        paths.plots.parent.mkdir(parents=True, exist_ok=True)
        with paths.plots.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["model", "capability", "score"])
            writer.writerows((m, name, v) for name, values in rows.items() for m, v in values.items())
    delta = {
        m: {name: round(v[m] - v[p.baseline], 4) for name, v in rows.items() if m in v}
        for m in results
        if m != p.baseline
    }
    write_metrics({"baseline": p.baseline, "delta": delta, "trained_tokens": tokens}, paths.metrics)
    log.info("report: %s", paths.output / "report.md")


if __name__ == "__main__":
    main()
