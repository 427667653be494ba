"""benchmarks/README.md from benchmarks/results/*.json: the latest table of every benchmark, with its machine.

Generated, never edited by hand, so a number in the README is always one a benchmark wrote. Run after any benchmark:

    python -m benchmarks.report
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS


README = Path(__file__).parent / "README.md"
Rows = list[list[Any]]


def cell(value: Any) -> str:
    """Thousands separators; a float >= 100 as an integer, a smaller one to 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table(header: list[str], rows: Rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)])


def machine(m: dict[str, Any]) -> str:
    """One line; results written before benchmarks/common.py settled its keys name some fields differently."""
    versions = m.get("versions") or m.get("libraries") or m.get("packages") or {}
    cpu, cores = m.get("cpu") or m.get("processor") or m["platform"], m.get("cores") or m.get("cpus")
    load = f", 1-minute load {m['load_average_1m']:.2f} at the start" if "load_average_1m" in m else ""
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    date = m.get("date", "date not recorded")
    return f"{cpu}, {cores} cores, Python {m['python']}, {date}{load}. Versions: {listed}."


def curation(r: dict[str, Any]) -> tuple[str, str]:
    rows = [[s, v["in"], v["kept"], v["wall_s"], v["cpu_s"], v["docs_per_s_per_core"]] for s, v in r["stages"].items()]
    text = table(["stage", "in", "kept", "wall s", "CPU s", "docs/s per core"], rows)
    return f"{r['documents']:,} real documents, {r['text_mb']} MB of text", (
        f"{text}\n\nEnd to end: {r['end_to_end_wall_s']} s, **{r['end_to_end_mb_per_s']} MB/s** on one worker."
    )


def dedup(r: dict[str, Any]) -> tuple[str, str]:
    ours = next(iter(r["docs_per_cpu_s"].values()))
    rows = [[k, v, r["docs_per_wall_s"][k], f"{ours / v:.2f}x"] for k, v in r["docs_per_cpu_s"].items()]
    head = f"MinHash signatures of {r['documents']:,} documents of {r['words_per_doc']:.0f} words ({r['source']})"
    return head, table(["implementation", "docs/CPU-s", "docs/wall-s", "ours vs it"], rows) + (
        f"\n\nTarget: {r['target_docs_per_s_per_core']:,} docs/s per core."
    )


def quality(r: dict[str, Any]) -> tuple[str, str]:
    rows, ngrams = [], r["results"].get("ngram_statistics_10k_whole")
    for corpus, v in r["results"].items():
        if "ours" not in v:
            continue
        o, d = v["ours"], v["datatrove"]
        speed = o["docs_per_cpu_s"] / d["docs_per_cpu_s"]
        rows.append([corpus, v["docs"], f"{o['kept_rate']:.1%}", o["docs_per_cpu_s"], f"{d['kept_rate']:.1%}",
                     d["docs_per_cpu_s"], f"{speed:.1f}x"])  # fmt: skip
    header = ["corpus", "docs", "ours kept", "ours docs/CPU-s", "datatrove kept", "datatrove docs/CPU-s", "speed-up"]
    text = table(header, rows)
    if ngrams:
        ours, theirs = ngrams["ours_words_per_cpu_s"], ngrams["datatrove_words_per_cpu_s"]
        text += (f"\n\nGopher n-gram statistics alone on {ngrams['words']:,} words of whole 10-K sections: ours "
                 f"{ours:,.0f} words/CPU-s, datatrove {theirs:,.0f}.")  # fmt: skip
    return "quality filters on real financial text vs datatrove's Gopher/C4/FineWeb chain", text


def decontam(r: dict[str, Any]) -> tuple[str, str]:
    rows = [[x["step"], x["input"], x["seconds"], x["rate"]] for x in r["rows"]]
    hits = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in r["hits"].items())
    return "decontamination index and scans", table(["step", "input", "seconds", "rate"], rows) + f"\n\nHits: {hits}."


def domain(r: dict[str, Any]) -> tuple[str, str]:
    rows = [[x["run"], f"{x['selection']['threshold']:.3f}", f"{x['holdout']['f1']:.3f}", f"{x['truth']['f1']:.3f}",
             x["seconds"], x["records/s"]] for x in r["runs"]]  # fmt: skip
    text = table(["run", "cut", "held-out seed F1", "web F1 vs truth", "stage s", "records/s"], rows)
    return "fastText domain classifier on real text", (
        f"{text}\n\nTraining {r['train_seconds']:.2f} s. Scoring **{r['scoring_texts_per_s']:,.0f} texts/s** on one "
        f"core ({r['words_per_text']:.0f} words each), of which fastText's predict alone runs at "
        f"{r['predict_only_texts_per_s']:,.0f} texts/s; the rest is the text normalization."
    )


def language(r: dict[str, Any]) -> tuple[str, str]:
    columns = list(r["results"][0])[1:]
    rows = [[c, *(x[c] if not isinstance(x[c], float) or "docs/s" in c else f"{x[c]:.3f}" for x in r["results"])]
            for c in columns]  # fmt: skip
    return "language identifiers: accuracy and speed", table(["", *(x["identifier"] for x in r["results"])], rows)


def audit(r: dict[str, Any]) -> tuple[str, str]:
    rows = [[f"{r['rows']:,} rows", ", ".join(f"{s:.3f}" for s in r["seconds"]), r["best_s"], "< 1 s"]]
    return "the audit over 1M metadata rows", table(["input", "runs (s)", "best (s)", "target"], rows)


def training(r: dict[str, Any]) -> tuple[str, str]:
    ref = r["results"].get("trl_padding", {}).get("tokens_per_s")
    rows = [[k, f"{v['non_pad_fraction']:.1%}", v["tokens_per_s"], f"{v['mfu']:.1%}",
             f"{v['tokens_per_s'] / ref:.2f}x" if ref else "-"] for k, v in r["results"].items()]  # fmt: skip
    m, d = r["model"], r["data"]
    head = (f"packing and training on {r['device']}: {m['matmul_weights'] / 1e6:.1f}M matmul weights, "
            f"{m['compute_dtype']}, seq {d['seq_len']}, batch {d['batch']}, {r['steps']} steps ({r['warmup']} "
            f"warm-up); {d['sequences']:,} sequences, {d['tokens']:,} tokens of the default mixture")  # fmt: skip
    return head, table(["contender", "non-pad tokens", "tokens/s", "MFU", "vs trl_padding"], rows) + (
        f"\n\nMFU denominator: measured matmul peak {r['matmul_peak_flops'] / 1e12:.2f} TFLOP/s."
    )


def generate(r: dict[str, Any]) -> tuple[str, str]:
    rows = [
        [f"batched ({r['batch_size']})", r["batched_tokens_per_s"]],
        ["one prompt at a time", r["single_tokens_per_s"]],
    ]
    return f"FinEval runner on {r['device']}: {r['items']} prompts x {r['max_new_tokens']} new tokens", (
        table(["runner", "generated tokens/s"], rows) + f"\n\nSpeed-up: **{r['speedup']}x**."
    )


def stages(r: dict[str, Any]) -> tuple[str, str]:
    rows = [[k, v] for k, v in r["stages"].items()]
    return "every dvc stage of the real-data profile", table(
        ["stage", "seconds"], rows
    ) + f"\n\nTotal {r['total_s']} s."


RENDER: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[str, str]]]] = {  # result file -> (script, render)
    "curation": ("bench_curation", curation),
    "dedup": ("bench_dedup", dedup),
    "quality": ("bench_quality", quality),
    "language": ("bench_language", language),
    "domain": ("bench_domain", domain),
    "decontam": ("bench_decontam", decontam),
    "audit": ("bench_audit", audit),
    "training_cpu": ("bench_training", training),
    "training_gpu": ("bench_training --preset gpu", training),
    "generate": ("bench_generate", generate),
    "stages_real": ("bench_stages", stages),
}
INTRO = """# Benchmarks

Generated by `python -m benchmarks.report` from `benchmarks/results/*.json`; do not edit. Each benchmark is a script
run by hand from the repository root (not collected by pytest); its docstring says what it measures and against
what baseline. Speed claims are ratios measured in one run, on one machine, against the tool a user would otherwise
pick. CPU seconds are reported beside wall seconds where other processes may share the machine.
"""


def main() -> None:
    parts = [INTRO]
    for name, (script, render) in RENDER.items():
        path = RESULTS / f"{name}.json"
        module = script.split()[0]
        if not path.is_file():
            gpu = " It needs a CUDA GPU: `bash benchmarks/gpu.sh` runs it on a lent one." if "gpu" in name else ""
            parts.append(f"## {name}\n\nNo result yet. Run `python -m benchmarks.{script}`.{gpu}\n")
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        title, body = render(result)
        parts.append(
            f"## {name}: {title}\n\n{body}\n\nMachine: {machine(result['machine'])}\n\n"
            f"Rerun: `python -m benchmarks.{script}` ([{module}.py]({module}.py)).\n"
        )
    README.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
