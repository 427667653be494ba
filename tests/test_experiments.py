"""experiments/findings.py: the matrix names real params, and the comparison of claims is exact arithmetic."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from curation.config import ConfigError, apply_profile, load_params
from experiments.findings import Matrix, compare, exp_commands, experiments, load_matrix, markdown, verdict
from tests.conftest import PARAMS, REPO


def stage_sections() -> dict[str, type]:
    """Every params section a stage reads, with its dataclass."""
    from curation.mixture import MixtureParams
    from curation.world import WorldParams
    from evaluation.evaluate import EvaluateParams
    from training.base import BaseParams
    from training.joint import JointParams
    from training.model import ModelParams
    from training.pairs import PairsParams
    from training.rpo import RpoParams
    from training.sample import SampleParams
    from training.trainer import HeldOutParams

    return {"world": WorldParams, "mixture": MixtureParams, "model": ModelParams, "held_out": HeldOutParams,
            "base": BaseParams, "joint": JointParams, "sample": SampleParams, "pairs": PairsParams,
            "rpo": RpoParams, "evaluate": EvaluateParams}  # fmt: skip


def set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` as `dvc exp run -S` does, but only where the key already exists: a typo must fail here."""
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node[part]
    assert last in node, f"experiments/matrix.yaml: {key} is not a key of params.yaml"
    node[last] = value


def test_every_variant_and_seed_sets_existing_params_to_valid_values(tmp_path: Path) -> None:
    m = load_matrix()
    shipped = yaml.safe_load(PARAMS.read_text())
    for name, overrides in m.variants.items():
        params = copy.deepcopy(shipped)
        for key, value in {**overrides, **dict.fromkeys(m.seed_params, 7)}.items():
            set_dotted(params, key, value)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(params))
        for section, cls in stage_sections().items():
            load_params(section, cls, path)  # raises on a value the stage would reject
    assert load_params("joint", stage_sections()["joint"], PARAMS).phases == [["cpt", "it"]]  # joint is the default


@pytest.mark.parametrize("profile", ["findings-cpu", "findings-gpu"])
def test_the_findings_profiles_give_valid_params(profile: str, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())
    changed = apply_profile(params, REPO / "profiles" / f"{profile}.yaml")
    touched = {key.split(".")[0] for key in changed}
    sections = stage_sections()
    assert touched <= set(sections)
    for section in touched:
        load_params(section, sections[section], params)


def test_a_claim_must_name_variants_of_the_matrix(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "experiments" / "matrix.yaml").read_text())
    data["findings"]["claims"][0]["against"] = "sequentail"
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="sequentail"):
        load_matrix(path)
    del data["findings"]["seeds"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="seeds"):
        load_matrix(path)


def test_each_variant_and_seed_is_one_named_experiment_with_json_overrides() -> None:
    m = load_matrix()
    commands = exp_commands(m, ["sequential", "fap_only"], [0, 1], queue=False)
    assert [c[c.index("-n") + 1] for c in commands] == ["sequential-s0", "sequential-s1", "fap_only-s0", "fap_only-s1"]
    first = commands[0]
    assert first[:4] == ["dvc", "exp", "run", "--temp"]
    sets = [first[i + 1] for i, arg in enumerate(first) if arg == "-S"]
    assert 'joint.phases=[["cpt"], ["it"]]' in sets
    assert {s.split("=")[0] for s in sets} == {"joint.phases", *m.seed_params}
    assert all(s.endswith("=1") for s in [commands[1][i + 1] for i, a in enumerate(commands[1]) if a == "-S"][1:])
    assert exp_commands(m, ["joint"], [0], queue=True)[0][3] == "--queue"


MATRIX = Matrix(
    seeds=[0, 1, 2],
    seed_params=["joint.train.foundation.seed"],
    variants={"joint": {}, "sequential": {"joint.phases": [["cpt"], ["it"]]}},
    claims=[
        {"claim": "joint forgets less", "model": "reasoning", "expected": "joint", "against": "sequential",
         "metrics": {"capabilities.general.target_nll": "lower", "capabilities.general.score": "higher"}}
    ],
)  # fmt: skip


def show(*runs: tuple[str, float | None, float]) -> list[dict[str, Any]]:
    """`dvc exp show --json` output: the workspace, then a baseline commit with one experiment per run."""

    def rev(name: str | None, nll: float | None, score: float) -> dict[str, Any]:
        general = {"score": score} if nll is None else {"score": score, "target_nll": nll}
        metrics = {"data/metrics/evaluate/reasoning.json": {"data": {"capabilities": {"general": general}}},
                   "data/metrics/evaluate/base.json": {"data": {"overall": 0.5}}}  # fmt: skip
        return {"rev": "abc1234", "name": name, "data": {"metrics": metrics, "params": {}}, "error": None}

    experiments = [{"revs": [rev(*r)], "executor": None, "name": r[0]} for r in runs]
    return [{**rev(None, 9.0, 0.0), "rev": "workspace", "experiments": None},
            {**rev("main", 9.0, 0.0), "experiments": experiments}]  # fmt: skip


def test_claims_compare_means_against_the_sum_of_spreads() -> None:
    runs = experiments(
        show(
            ("joint-s0", 6.0, 0.1),
            ("joint-s1", 6.2, 0.1),
            ("joint-s2", 6.4, 0.1),
            ("sequential-s0", 7.0, 0.1),
            ("sequential-s1", 7.1, 0.1),
            ("sequential-s2", 7.2, 0.1),
            ("other-s0", 1.0, 1.0),
            ("joint-s9x", 1.0, 1.0),
        ),
        MATRIX,
    )  # the last two: not of the matrix
    assert sorted(runs) == ["joint-s0", "joint-s1", "joint-s2", "sequential-s0", "sequential-s1", "sequential-s2"]
    assert runs["joint-s1"] == {"variant": "joint", "seed": 1, "metrics": {"reasoning": {
        "capabilities.general.target_nll": 6.2, "capabilities.general.score": 0.1}}}  # fmt: skip
    (claim,) = compare(runs, MATRIX)
    nll, score = claim["rows"]
    assert nll["joint"]["mean"] == pytest.approx(6.2) and nll["joint"]["sd"] == pytest.approx(0.2)
    assert nll["sequential"]["mean"] == pytest.approx(7.1) and nll["sequential"]["sd"] == pytest.approx(0.1)
    assert nll["gain"] == pytest.approx(0.9) and nll["verdict"] == "agrees"  # 0.9 lower nll > 0.2 + 0.1 of noise
    assert score["gain"] == pytest.approx(0.0) and score["verdict"] == "within seed noise"
    line = "| capabilities.general.target_nll | lower | 6.2000 ± 0.2000 (3) | 7.1000 ± 0.1000 (3) | +0.9000 | agrees |"
    assert line in markdown([claim])
    json.dumps(claim)  # the results file holds it as is


def test_verdicts() -> None:
    def side(mean: float, sd: float, n: int = 3) -> dict[str, Any]:
        return {"mean": mean, "sd": sd, "n": n}

    gain, word = verdict(side(1.0, 0.1), side(2.0, 0.1), "lower")
    assert gain == pytest.approx(1.0) and word == "agrees"
    assert verdict(side(2.0, 0.1), side(1.0, 0.1), "lower")[1] == "disagrees"
    assert verdict(side(1.0, 0.5), side(1.5, 0.5), "lower")[1] == "within seed noise"
    assert verdict(side(1.0, 0.0, 1), side(2.0, 0.0, 1), "higher") == (-1.0, "one seed")


def test_a_run_without_a_claimed_metric_fails_with_its_name() -> None:
    runs = experiments(show(("joint-s0", 6.0, 0.1), ("sequential-s0", None, 0.1)), MATRIX)
    with pytest.raises(ValueError, match=r"sequential lacks capabilities\.general\.target_nll of evaluate@reasoning"):
        compare(runs, MATRIX)
