"""FinDAP's findings in miniature: the experiment matrix (experiments/matrix.yaml) as DVC experiments, then the
comparison of each claim's two variants over seeds.

    python -m experiments.findings run [--seeds 0 1 2] [--variants joint sequential] [--queue]
    python -m experiments.findings collect --output experiments/results/cpu

`run` runs one `dvc exp run --temp -n <variant>-s<seed> -S ...` per variant and seed, one after the other, each in
a copy of the baseline commit (an earlier experiment of the same name is removed first); with `--queue` it only
queues them, for `dvc exp run --run-all` (or `dvc queue start --jobs N`) to run. Foreground runs are the default
because DVC's queue workers can hang after an experiment finishes (treeverse/dvc#10428, seen here with dvc 3.67).
DVC's run cache restores every stage whose inputs an earlier experiment already had, so variants share the
curation, the base model, and (for the preference variants) the curriculum.

`collect` reads the experiments back from `dvc exp show --json` (the table `dvc exp show` prints), and writes
`<output>.json` (every run's numbers, the matrix, the machine), `<output>.md` (a table per claim) and `<output>.png`
(each claim's first metric per variant, mean and seeds).

A claim's verdict compares the gain of the variant FinDAP finds better, oriented so that positive favours it, with
the seed noise, the sum of both variants' standard deviations over seeds: `agrees` when the gain exceeds it,
`disagrees` when the loss does, `within seed noise` otherwise, and `one seed` when there is no spread to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import re
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from curation.config import load_params, params
from curation.progress import setup_logging, track


log = logging.getLogger("findings")
MATRIX = Path(__file__).with_name("matrix.yaml")
METRICS = "data/metrics/evaluate/{model}.json"  # evaluate@<model>'s metrics file, as dvc.yaml writes it


@params
class Claim:
    claim: str
    model: str
    expected: str
    against: str
    metrics: dict[str, Literal["lower", "higher"]]


@params
class Matrix:
    seeds: list[int]
    seed_params: list[str]
    variants: dict[str, dict[str, Any]]
    claims: list[Claim]


def load_matrix(path: Path = MATRIX) -> Matrix:
    matrix = load_params("findings", Matrix, path)
    for c in matrix.claims:
        unknown = {c.expected, c.against} - set(matrix.variants)
        if unknown:
            raise ValueError(f"{path}: claim {c.claim!r} names variants {sorted(unknown)} not in `variants`")
    return matrix


def experiment_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


def exp_commands(m: Matrix, variants: Sequence[str], seeds: Sequence[int], queue: bool) -> list[list[str]]:
    """One `dvc exp run` per variant and seed; values are JSON, which DVC's `-S` parser reads. Without `queue`, each
    runs at once with `--temp`: in its own copy of the baseline, so no variant inherits another's overrides."""
    commands = []
    for variant in variants:
        for seed in seeds:
            overrides = {**m.variants[variant], **dict.fromkeys(m.seed_params, seed)}
            sets = [arg for key, value in overrides.items() for arg in ("-S", f"{key}={json.dumps(value)}")]
            where = "--queue" if queue else "--temp"
            commands.append(["dvc", "exp", "run", where, "-n", experiment_name(variant, seed), *sets])
    return commands


def dvc(args: Sequence[str], repo: Path) -> str:
    result = subprocess.run(args, cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} failed in {repo}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def run(m: Matrix, variants: Sequence[str], seeds: Sequence[int], queue: bool, repo: Path) -> list[str]:
    """Run (or only queue) the matrix; returns the experiment names. An earlier experiment of a name is removed."""
    names = [experiment_name(v, s) for v in variants for s in seeds]
    existing = set(dvc(["dvc", "exp", "list", "--name-only"], repo).split())
    if stale := sorted(existing & set(names)):
        log.info("findings: removing earlier experiments %s", ", ".join(stale))
        dvc(["dvc", "exp", "remove", *stale], repo)
    for command in track(exp_commands(m, variants, seeds, queue), "experiments"):
        log.info("findings: %s", " ".join(command))
        dvc(command, repo)
    if queue:
        log.info("findings: %d experiments queued; run them with `dvc exp run --run-all`", len(names))
    return names


def lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """`capabilities.general.score` in a metrics file's nested data; None where a key is missing."""
    for key in dotted.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def experiments(show: Sequence[Mapping[str, Any]], m: Matrix) -> dict[str, dict[str, Any]]:
    """The matrix's experiments in `dvc exp show --json` output: name -> variant, seed, and the claimed metrics
    of each claim's model (None where an experiment lacks one)."""
    pattern = re.compile(rf"^({'|'.join(map(re.escape, m.variants))})-s(\d+)$")
    wanted: dict[str, set[str]] = {}
    for c in m.claims:
        wanted.setdefault(c.model, set()).update(c.metrics)
    found = {}
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                match = pattern.match(rev.get("name") or "")
                if not match:
                    continue
                files = (rev.get("data") or {}).get("metrics") or {}
                metrics = {}
                for model, keys in sorted(wanted.items()):
                    data = (files.get(METRICS.format(model=model)) or {}).get("data") or {}
                    metrics[model] = {k: lookup(data, k) for k in sorted(keys)}
                found[match[0]] = {"variant": match[1], "seed": int(match[2]), "metrics": metrics}
    return dict(sorted(found.items()))


def stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
        "values": list(values),
    }


def verdict(expected: Mapping[str, Any], against: Mapping[str, Any], better: str) -> tuple[float, str]:
    """The gain of `expected` over `against` (positive favours `expected`) and what it says against seed noise."""
    gain = (expected["mean"] - against["mean"]) * (1 if better == "higher" else -1)
    noise = expected["sd"] + against["sd"]
    if min(expected["n"], against["n"]) < 2:
        return gain, "one seed"
    if gain > noise:
        return gain, "agrees"
    if -gain > noise:
        return gain, "disagrees"
    return gain, "within seed noise"


def compare(runs: Mapping[str, Mapping[str, Any]], m: Matrix) -> list[dict[str, Any]]:
    """Per claim and metric: both variants' mean, spread and seeds, the gain and the verdict."""
    out = []
    for c in m.claims:
        rows = []
        for metric, better in c.metrics.items():
            side = {}
            for variant in (c.expected, c.against):
                values = [r["metrics"][c.model][metric] for r in runs.values() if r["variant"] == variant]
                if not values or any(v is None or not math.isfinite(v) for v in values):
                    raise ValueError(f"claim {c.claim!r}: {variant} lacks {metric} of evaluate@{c.model} in a run")
                side[variant] = stats(values)
            gain, word = verdict(side[c.expected], side[c.against], better)
            rows.append({"metric": metric, "better": better, **side, "gain": gain, "verdict": word})
        out.append({"claim": c.claim, "model": c.model, "expected": c.expected, "against": c.against, "rows": rows})
    return out


def markdown(claims: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in claims:
        e, a = c["expected"], c["against"]
        lines += [f"### {c['claim']}", "", f"evaluate@{c['model']}; mean ± sd over seeds (n).", ""]
        lines += [f"| metric | better | {e} | {a} | gain of {e} | verdict |", "|---|---|---|---|---|---|"]
        for r in c["rows"]:
            sides = [f"{r[v]['mean']:.4f} ± {r[v]['sd']:.4f} ({r[v]['n']})" for v in (e, a)]
            cells = [r["metric"], r["better"], *sides, f"{r['gain']:+.4f}", r["verdict"]]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(claims: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Each claim's first metric: the two variants' means with seed dots and ±sd bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(claims), figsize=(4.2 * len(claims), 3.6), squeeze=False)
    for ax, c in zip(axes[0], claims, strict=True):
        r = c["rows"][0]
        variants = [c["expected"], c["against"]]
        ax.bar(variants, [r[v]["mean"] for v in variants], yerr=[r[v]["sd"] for v in variants], capsize=4,
               color=["tab:blue", "tab:gray"], alpha=0.7)  # fmt: skip
        for i, v in enumerate(variants):
            ax.plot([i] * r[v]["n"], r[v]["values"], "k.", markersize=6)
        ax.set_title(f"{r['metric']}\n({r['better']} is better; {r['verdict']})", fontsize=8)
        ax.set_xlabel(f"evaluate@{c['model']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> dict[str, Any]:
    """The benchmarks' machine record plus the GPU, if any, the experiments trained on."""
    import torch

    from benchmarks.common import machine as cpu_machine

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {**cpu_machine(), "gpu": gpu}


def collect(m: Matrix, repo: Path, output: Path) -> dict[str, Any]:
    runs = experiments(json.loads(dvc(["dvc", "exp", "show", "--json"], repo)), m)
    if not runs:
        raise RuntimeError(f"{repo}: no experiments named <variant>-s<seed>; run `python -m experiments.findings run`")
    claims = compare(runs, m)
    result = {"machine": machine(), "matrix": dataclasses.asdict(m), "runs": runs, "claims": claims}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(markdown(claims), encoding="utf-8")
    plot(claims, output.with_suffix(".png"))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "collect"])
    parser.add_argument("--matrix", type=Path, default=MATRIX)
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC project (default: here)")
    parser.add_argument("--variants", nargs="+", help="a subset of the matrix's variants (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds instead of the matrix's")
    parser.add_argument("--queue", action="store_true", help="run: only queue (then `dvc exp run --run-all`)")
    parser.add_argument("--output", type=Path, default=Path("experiments/results/findings"),
                        help="collect: results path without suffix (.json, .md and .png are written)")  # fmt: skip
    args = parser.parse_args(argv)
    m = load_matrix(args.matrix)
    if args.command == "run":
        unknown = set(args.variants or []) - set(m.variants)
        if unknown:
            raise SystemExit(f"--variants {sorted(unknown)}: not in {args.matrix} (known: {', '.join(m.variants)})")
        run(m, args.variants or list(m.variants), args.seeds or m.seeds, args.queue, args.repo)
    else:
        result = collect(m, args.repo, args.output)
        print(markdown(result["claims"]))  # noqa: T201


if __name__ == "__main__":
    setup_logging()
    main()
