"""dvc.yaml is the only place paths are written; these tests keep it honest against the code and params.yaml."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from dvc.parsing import DataResolver
from dvc.repo import Repo

from tests.conftest import PARAMS, REPO, commit_all, copy_repo, run


def resolved_stages() -> dict[str, dict]:
    """dvc.yaml's stages as DVC runs them: `foreach` expanded (evaluate@<model>) and `${...}` filled from params."""
    with Repo(str(REPO)) as repo:
        return DataResolver(repo, str(REPO), yaml.safe_load((REPO / "dvc.yaml").read_text())).resolve()["stages"]


STAGES = resolved_stages()
PACKAGES = ("curation", "training", "evaluation")


def module_file(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def project_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """The project modules `module` imports, transitively (what its stage must list as deps)."""
    seen = seen if seen is not None else set()
    if module in seen:
        return seen
    seen.add(module)
    for node in ast.walk(ast.parse(module_file(module).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and module_file(name).exists():
                project_imports(name, seen)
    return seen


def declared(stage: dict, key: str) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in stage.get(key, [])}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_paths_and_modules_are_declared(name: str) -> None:
    stage = STAGES[name]
    cmd, deps = stage["cmd"], declared(stage, "deps")
    module = re.search(r"python -m ([\w.]+)", cmd).group(1)
    known = deps | declared(stage, "outs") | declared(stage, "metrics") | declared(stage, "plots")
    for path in re.findall(r"--(?:input|output|metrics|params|plots) (\S+)", cmd):
        assert any(k == path or k.startswith(f"{path}/") for k in known), f"{name}: {path} not declared"
    needed = {str(module_file(m).relative_to(REPO)) for m in project_imports(module)}
    assert needed <= deps, f"{name}: add {sorted(needed - deps)} to its deps"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_params_sections_exist(name: str) -> None:
    for key in STAGES[name].get("params", []):
        section: object = yaml.safe_load(PARAMS.read_text())
        for part in key.split("."):
            assert isinstance(section, dict) and part in section, f"{name}: params key {key!r} is not in params.yaml"
            section = section[part]


def test_report_reads_every_evaluated_model() -> None:
    models = yaml.safe_load(PARAMS.read_text())["evaluate"]["models"]
    assert {n for n in STAGES if n.startswith("evaluate@")} == {f"evaluate@{m}" for m in models}
    wanted = {f"data/metrics/evaluate/{m}.json" for m in models}
    assert wanted <= declared(STAGES["report"], "deps"), f"report: add {sorted(wanted)} to its deps"


def test_outputs_live_under_data() -> None:
    for name, stage in STAGES.items():
        for out in declared(stage, "outs") | declared(stage, "metrics"):
            assert out.startswith("data/"), f"{name}: {out} must be under data/"


TINY_WORLD = {
    "n_companies": 6,
    "n_years": 2,
    "news_per_company": 3,
    "calls_per_company": 1,
    "n_glossary_docs": 20,
    "n_general": 40,
    "n_web_finance": 20,
    "n_web_general": 10,
    "n_nonenglish": 12,
    "n_spam": 10,
    "n_leaked_cpt": 3,
    "n_leaked_it": 3,
    "malformed_rows": 2,
    "it": dict.fromkeys(("concepts", "tasks", "reasoning", "instruction_following", "general"), 20),
    "eval": dict.fromkeys(("concepts", "tasks", "reasoning", "instruction_following", "general"), 10),
}


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (tracked and unignored files) whose params make a tiny world, after `dvc repro`."""
    root = copy_repo(tmp_path_factory.mktemp("project"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["world"].update(TINY_WORLD)
    for train in (params["base"]["train"], *params["joint"]["train"].values(), params["rpo"]["train"]):
        train.update(max_steps=2, save_steps=1)  # the plumbing, not the learning: tests/training covers that
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(root, "tiny world")
    run(["dvc", "repro", "--quiet"], root)
    return root


def test_dvc_repro_end_to_end(tiny_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_project)  # catalog views name their Parquet relative to the project root
    assert "up to date" in run(["dvc", "status"], tiny_project)
    for name, stage in STAGES.items():
        for path in declared(stage, "metrics"):
            metrics = json.loads((tiny_project / path).read_text())
            if "kept" in metrics:
                assert metrics["in"] == metrics["kept"] + sum(metrics["dropped"].values()), name
    tasks = {p.stem for p in (REPO / "evaluation" / "tasks").glob("fintrain_*.yaml")}
    for model in ("base", "foundation", "reasoning", "aligned"):
        evaluated = json.loads((tiny_project / "data" / "metrics" / "evaluate" / f"{model}.json").read_text())
        assert set(evaluated["tasks"]) == tasks and 0 <= evaluated["overall"] <= 1
    report = (tiny_project / "data" / "report" / "report.md").read_text()
    assert all(f"| {task} |" in report for task in tasks)
    metrics = {s: json.loads((tiny_project / "data" / "metrics" / f"{s}.json").read_text())
               for s in ("sample", "judge", "pairs", "rpo", "audit_pairs")}  # fmt: skip
    num_samples = yaml.safe_load((tiny_project / "params.yaml").read_text())["sample"]["num_samples"]
    assert metrics["judge"]["trajectories"] == metrics["sample"]["samples"] == metrics["sample"]["kept"] * num_samples
    assert metrics["pairs"]["in"] == metrics["sample"]["kept"] and sum(metrics["pairs"]["pairs"].values()) > 0
    assert metrics["rpo"]["train"]["pairs"] == sum(metrics["pairs"]["pairs"].values())
    assert metrics["rpo"]["train"]["steps"] == 2 and metrics["rpo"]["train"]["margins"]["history"]
    assert sum(metrics["audit_pairs"]["preference_pairs"].values()) == metrics["rpo"]["train"]["pairs"]
    with duckdb.connect("data/catalog.duckdb", read_only=True) as con:
        sql = "SELECT count(*) FROM ingest_drops WHERE reason IN ('ingest.malformed_json', 'ingest.undecodable_bytes')"
        assert con.execute(sql).fetchall() == [(TINY_WORLD["malformed_rows"],)]
        sql = "SELECT count(*) FROM ingest WHERE (metadata->>'$.is_spam')::BOOLEAN"
        assert con.execute(sql).fetchall() == [(TINY_WORLD["n_spam"],)]
        capabilities = {c for (c,) in con.execute("SELECT DISTINCT capability FROM ingest").fetchall()}
        judged = con.execute("SELECT count(*) FROM judgements").fetchall()
        assert (
            judged == con.execute("SELECT count(*) FROM samples").fetchall() == [(metrics["judge"]["trajectories"],)]
        )
    assert capabilities == {"concepts", "tasks", "reasoning", "instruction_following", "general"}


def test_every_model_the_pipeline_writes_is_safetensors(tiny_project: Path) -> None:
    """Model folders hold safetensors weights and no pickle (`*.bin`, `*.pt`, ...), checkpoints aside."""
    folders = [tiny_project / "data" / m for m in ("base", "joint/foundation", "joint/reasoning", "rpo")]
    for folder in folders:
        names = {p.name for p in folder.iterdir()}
        assert "model.safetensors" in names, folder
        assert not {n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))}, folder


CURATION = ("world", "ingest", "clean", "language", "quality", "domain", "dedup", "decontam")
DATA_STAGES = (*CURATION, "mixture", "tokenizer", "pack", "audit")


def outs(lock: dict) -> dict[str, str]:
    """Output hashes of the data stages (training outputs carry timings; tests/training checks their weights)."""
    return {o["path"]: o["md5"] for name in DATA_STAGES for o in lock["stages"][name].get("outs", [])}


def test_a_forced_rerun_is_byte_identical(tiny_project: Path) -> None:
    before = outs(yaml.safe_load((tiny_project / "dvc.lock").read_text()))
    run(["dvc", "repro", "--force", "--quiet"], tiny_project)
    assert outs(yaml.safe_load((tiny_project / "dvc.lock").read_text())) == before


def test_a_mixture_ratio_change_reruns_only_the_mixture_and_after(tiny_project: Path) -> None:
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["mixture"]["cpt_to_it_ratio"] = 0.5
    (tiny_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run(["dvc", "status", "--json"], tiny_project)
    assert set(json.loads(status)) == {"mixture"}  # status names the changed stage; repro runs what depends on it
    log = run(["dvc", "repro"], tiny_project)
    ran = set(re.findall(r"Running stage '([\w@]+)'", log))
    # base reruns too: its held-out CPT sample is drawn from the mixture's drops, which the ratio changes
    # evaluate@base does not: the base model trains on the base side set, which the ratio leaves alone, so its
    # weights, evaluate@base's dependency, come out byte-identical
    evaluated = {"evaluate@foundation", "evaluate@reasoning", "evaluate@aligned"}
    preference = {"sample", "judge", "pairs", "audit_pairs", "rpo"}
    assert ran == {"mixture", "pack", "audit", "base", "joint", *preference, *evaluated, "report"}
    assert not ran & set(CURATION)
    metrics = json.loads((tiny_project / "data" / "metrics" / "mixture.json").read_text())
    assert metrics["groups"]["foundation"]["cpt_to_it"] == pytest.approx(0.5, abs=0.1)


@pytest.fixture(scope="session")
def matrix_project(tiny_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny project as the findings matrix's baseline: its committed params, reproduced, and committed."""
    root = tmp_path_factory.mktemp("matrix") / "project"
    shutil.copytree(tiny_project, root, symlinks=True)
    run(["git", "checkout", "--", "params.yaml"], root)  # other tests change the tiny project's params
    run(["dvc", "repro", "--quiet"], root)  # the run cache restores what the tiny run made
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "baseline"], root)
    return root


@pytest.mark.timeout(1800)  # four DVC experiments, each retraining from the joint stage on
def test_the_findings_matrix_runs_every_variant_as_an_experiment_and_compares_the_claims(
    matrix_project: Path, tmp_path: Path
) -> None:
    """CI's smoke version of experiments/matrix.yaml: one seed of every variant at tiny sizes."""
    from experiments import findings

    m = findings.load_matrix()
    names = findings.run(m, list(m.variants), [0], queue=False, repo=matrix_project)
    result = findings.collect(m, matrix_project, tmp_path / "smoke")
    assert sorted(result["runs"]) == sorted(names) == sorted(f"{v}-s0" for v in m.variants)
    assert [c["claim"] for c in result["claims"]] == [c.claim for c in m.claims]
    assert all(r["verdict"] == "one seed" for c in result["claims"] for r in c["rows"])
    assert (tmp_path / "smoke.png").stat().st_size and "### " in (tmp_path / "smoke.md").read_text()
    show = json.loads(run(["dvc", "exp", "show", "--json"], matrix_project))
    files = {rev["name"]: rev["data"]["metrics"] for exp in show[1]["experiments"] for rev in exp["revs"]}

    def metric(name: str, file: str, key: str) -> Any:
        return findings.lookup(files[name][f"data/metrics/{file}.json"]["data"], key)

    for name in names:  # every experiment ran to the report
        assert metric(name, "report", "baseline") == "base", name
    steps = "groups.foundation.phases.{}.train.steps"
    assert metric("joint-s0", "joint", steps.format("0-cpt+it")) == 2
    sequential = [metric("sequential-s0", "joint", steps.format(phase)) for phase in ("0-cpt", "1-it")]
    assert sequential == [1, 1]
    assert metric("it_only-s0", "joint", steps.format("0-it")) == 2
    assert metric("it_only-s0", "joint", steps.format("0-cpt+it")) is None
    assert metric("fap_only-s0", "pairs", "pairs.fap") > 0 and not metric("fap_only-s0", "pairs", "pairs.scp")


REAL_SAMPLE_ROWS = 100  # rows read per real source in CI: every stage runs on real data in minutes


@pytest.fixture(scope="session")
def real_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with `findap profile real` applied, sampled down, after `dvc repro`."""
    from tests.realdata import DATA, require

    require(DATA)
    root = copy_repo(tmp_path_factory.mktemp("real"), skip_data=True)
    run(["findap", "profile", "real"], root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for s in params["ingest"]["sources"]:  # the copy is not beside ../shared: absolute paths, sampled sizes
        s.update(path=s["path"].replace("../shared/data", str(DATA)), max_rows=min(s["max_rows"] or 10**9,
                                                                                   REAL_SAMPLE_ROWS))  # fmt: skip
    params["evaluate"]["paths"]["shared"] = str(DATA)
    params["evaluate"]["max_items"] = 2
    for train in (params["base"]["train"], *params["joint"]["train"].values(), params["rpo"]["train"]):
        train.update(max_steps=2, save_steps=1)
    params["sample"].update(num_samples=2, max_new_tokens=8)
    params["mixture"]["preference"]["max_prompts"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(root, "real")
    run(["dvc", "repro", "--quiet"], root)
    return root


def test_the_real_data_profile_runs_end_to_end_and_finds_the_planted_contamination(real_project: Path) -> None:
    assert "up to date" in run(["dvc", "status"], real_project)
    metrics = {p.stem: json.loads(p.read_text()) for p in (real_project / "data" / "metrics").glob("*.json")}
    for name in ("ingest", "clean", "language", "quality", "domain", "dedup", "decontam", "mixture", "pairs"):
        assert metrics[name]["in"] == metrics[name]["kept"] + sum(metrics[name]["dropped"].values()), name
    ingested = metrics["ingest"]["sources"]
    assert all(0 < s["in"] <= REAL_SAMPLE_ROWS for s in ingested.values()) and len(ingested) == 30
    assert (
        metrics["language"]["dropped"].get("language.not_kept_language", 0) >= 3
    )  # the German, French, Spanish pages
    contamination = metrics["decontam"]["contamination"]
    assert {"fpb", "fin_ner", "fiqa_sa", "tfns"} <= {b for b, c in contamination.items() if c["items_hit"]}
    evaluated = json.loads((real_project / "data" / "metrics" / "evaluate" / "aligned.json").read_text())
    tasks = {"fpb", "fiqa_sa", "tfns", "headlines", "fin_ner", "finqa", "convfinqa", "cfa_easy"}
    assert set(evaluated["tasks"]) == tasks and all(t["n"] == 2 for t in evaluated["tasks"].values())
