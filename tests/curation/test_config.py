from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from curation.config import ConfigError, apply_profile, load_params, params
from curation.ingest import IngestParams
from curation.io import IOParams
from tests.conftest import PARAMS, REPO


@params
class Inner:
    threshold: float


@params
class Outer:
    name: str
    inner: Inner
    sizes: list[int]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_shipped_sections_load() -> None:
    io = load_params("io", IOParams, PARAMS)
    ingest = load_params("ingest", IngestParams, PARAMS)
    assert io.rows_per_shard > 0
    assert len({s.name for s in ingest.sources}) == len(ingest.sources) >= 16


def test_nested_section_parses_and_replace_revalidates(tmp_path: Path) -> None:
    p = load_params("outer", Outer, write(tmp_path, "outer: {name: a, inner: {threshold: 0.5}, sizes: [1, 2]}"))
    assert p == Outer(name="a", inner=Inner(threshold=0.5), sizes=[1, 2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "b"  # type: ignore[misc]
    assert dataclasses.replace(p, name="b").name == "b"


def test_typo_key_fails_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "outer: {name: a, inner: {treshold: 0.5}, sizes: []}")
    with pytest.raises(ConfigError) as err:
        load_params("outer", Outer, path)
    assert "outer.inner.treshold" in str(err.value)
    assert "did you mean 'threshold'?" in str(err.value)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "outer: {nam: a, inner: {threshold: high}, sizes: [x]}")
    with pytest.raises(ConfigError) as err:
        load_params("outer", Outer, path)
    text = str(err.value)
    assert text.startswith("4 problem(s)")  # unknown nam, missing name, bad float, bad int
    assert "did you mean 'name'?" in text
    assert "inner.threshold" in text and "sizes.0" in text


def test_unknown_section_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "outer: {}")
    with pytest.raises(ConfigError, match="did you mean 'outer'"):
        load_params("outr", Outer, path)
    with pytest.raises(ConfigError, match="not found"):
        load_params("outer", Outer, tmp_path / "nope.yaml")


def test_a_profile_merges_mappings_key_by_key_replaces_lists_and_keeps_comments(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("a:\n  x: 1  # the x\n  y: [1, 2]\n  z: {k: 1}\nb: 2\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("a:\n  y: [3]\n  z: {new: 2}\n")
    assert apply_profile(params, profile) == ["a.y", "a.z.new"]
    assert yaml.safe_load(params.read_text()) == {"a": {"x": 1, "y": [3], "z": {"k": 1, "new": 2}}, "b": 2}
    assert "# the x" in params.read_text()


def test_the_real_data_profile_gives_valid_params_for_every_stage_it_touches(tmp_path: Path) -> None:
    from curation.decontam import DecontamParams
    from curation.dedup import DedupParams
    from curation.domain import DomainParams
    from curation.ingest import IngestParams
    from curation.mixture import MixtureParams
    from evaluation.evaluate import EvaluateParams
    from training.judge import JudgeParams

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())
    changed = apply_profile(params, REPO / "profiles" / "real.yaml")
    assert "ingest.sources" in changed and "evaluate.tasks" in changed
    sections = {"ingest": IngestParams, "domain": DomainParams, "dedup": DedupParams, "decontam": DecontamParams,
                "mixture": MixtureParams, "judge": JudgeParams, "evaluate": EvaluateParams}  # fmt: skip
    loaded = {name: load_params(name, cls, params) for name, cls in sections.items()}
    names = {s.name for s in loaded["ingest"].sources}
    assert set(loaded["domain"].finance_sources) | set(loaded["domain"].apply_to_sources) <= names
    assert all(s.path.startswith("../shared/data/") for s in loaded["ingest"].sources)
