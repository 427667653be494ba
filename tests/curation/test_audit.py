from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curation.audit import AccountingError, AuditParams, main, run
from curation.config import load_params
from curation.io import IOParams, write_drops
from tests.conftest import PARAMS
from tests.curation.stage_helpers import make_record, project, write_input


P = load_params("audit", AuditParams, PARAMS)


def chain(tmp_path: Path, lose: bool = False) -> list[Path]:
    """ingest (6 records) -> clean (4 kept, 1 dropped, and one lost when `lose`) -> mixture (2 groups + a prompt)."""
    records = [make_record(f"doc {i}", capability="concepts" if i % 2 else "tasks") for i in range(6)]
    io = load_params("io", IOParams, PARAMS)
    ingest = write_input(tmp_path / "ingest", records)
    clean = write_input(tmp_path / "clean", records[:4] if lose else records[:5])
    write_drops([{**records[5], "reason": "clean.empty_after_cleaning", "detail": "x"}], clean, io)
    mixed = []
    for i, r in enumerate(records[:4]):
        meta = {"mixture": {"group": "g1" if i < 3 else "g2", "role": "train", "copy": 0, "original_id": r["id"]}}
        mixed.append({**r, "metadata": json.dumps(meta)})
    prompt = {
        **records[0],
        "id": "p0",
        "metadata": json.dumps({"mixture": {"group": "preference", "role": "preference", "original_id": "x"}}),
    }
    mixture = write_input(tmp_path / "mixture", [*mixed, prompt])
    write_drops([{**records[4], "reason": "mixture.cpt_downsampled", "detail": "x"}], mixture, io)
    return [ingest, clean, mixture]


def test_books_balance_and_numbers_add_up(tmp_path: Path) -> None:
    metrics, tables = run(chain(tmp_path), P)
    assert metrics["accounting"]["clean"] == {"missing": 0, "twice": 0, "unknown": 0}
    assert metrics["stages"]["ingest"] == {"kept": 6, "dropped": 0, "by_reason": {}}
    assert metrics["stages"]["clean"] == {"kept": 5, "dropped": 1, "by_reason": {"clean.empty_after_cleaning": 1}}
    assert metrics["stages"]["mixture"]["kept"] == 4 and metrics["stages"]["mixture"]["preference"] == 1
    shares = {(g, c): s for g, c, s in tables["mixture"].select("group", "capability", "share").iter_rows()}
    assert shares[("g2", "concepts")] == 1.0
    assert shares[("g1", "tasks")] + shares[("g1", "concepts")] == pytest.approx(1.0)


def test_a_lost_record_fails_the_audit_and_is_named(tmp_path: Path) -> None:
    folders = chain(tmp_path, lose=True)
    lost = make_record("doc 4", capability="tasks")["id"]
    with pytest.raises(AccountingError, match=f"clean: missing 1, e.g. {lost}"):
        run(folders, P)


def test_main_writes_report_plots_and_plot_data(tmp_path: Path) -> None:
    folders = chain(tmp_path)
    argv = [a for f in folders for a in ("--input", str(f))]
    out, plots = tmp_path / "audit", tmp_path / "plots"
    main([*argv, "--output", str(out), "--metrics", str(tmp_path / "a.json"), "--plots", str(plots),
          "--params", str(project(tmp_path))])  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["funnel.png", "mixture.png", "report.md", "scores.png"]
    assert (plots / "audit_funnel.csv").read_text().splitlines() == [
        "stage,records",
        "ingest,6",
        "clean,5",
        "mixture,4",
    ]
    assert "| clean | concepts | cpt | clean.empty_after_cleaning | 1 |" in (out / "report.md").read_text()


def test_preference_pairs_are_counted_per_source_capability_type_and_origin(tmp_path: Path) -> None:
    def pair(i: int, kind: str, origin: str, source: str = "it_reasoning") -> dict:
        meta = {"pairs": {"type": kind, "chosen_from": origin, "prefix_steps": i}}
        return make_record(kind="pref", source=source, capability="reasoning", messages=[{"role": "user",
                           "content": f"q{i}"}], chosen="ab", rejected="abcd", metadata=meta)  # fmt: skip

    folder = write_input(tmp_path / "pairs", [pair(0, "fap", "policy"), pair(1, "fap", "reference"),
                                              pair(2, "scp", "judge"), pair(4, "scp", "judge"),
                                              pair(0, "fap", "policy", source="finqa")])  # fmt: skip
    metrics, tables = run([folder], P)
    assert metrics["preference_pairs"] == {
        "finqa/reasoning/fap/policy": 1, "it_reasoning/reasoning/fap/policy": 1,
        "it_reasoning/reasoning/fap/reference": 1, "it_reasoning/reasoning/scp/judge": 2,
    }  # fmt: skip
    scp = tables["preference_pairs"].filter(pl.col("pair_type") == "scp").row(0, named=True)
    assert (scp["mean_prefix_steps"], scp["mean_chosen_chars"], scp["mean_rejected_chars"]) == (3.0, 2.0, 4.0)
    assert metrics["accounting"] == {} and metrics["stages"]["pairs"]["kept"] == 5  # no chain to balance
