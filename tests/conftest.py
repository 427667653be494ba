"""Shared fixtures. Tests read the shipped params.yaml and override it with dataclasses.replace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the Hugging Face Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def run(cmd: list[str], cwd: Path) -> str:
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_repo(root: Path, skip_data: bool = False) -> Path:
    """The repository's tracked and unignored files copied into `root`, as a clean clone would have them."""
    for name in run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).splitlines():
        if (REPO / name).is_file() and not (skip_data and name.startswith("data/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


def commit_all(root: Path, message: str) -> None:
    """`git init` and one commit: DVCLive names its experiment after a commit."""
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", message], root)


CORPUS = [f"Revenue of company {i} rose {i % 17}.5% to ${1000 + i:,} million in fiscal 2023." for i in range(300)]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama saved with a locally trained tokenizer, as a training stage leaves a model."""
    import dataclasses

    import torch

    from curation.config import load_params
    from training.chat import stop_token_ids
    from training.model import ModelParams, build_model
    from training.tokenizer import TokenizerParams, train_bpe

    folder = tmp_path_factory.mktemp("model")
    tokenizer = train_bpe(
        CORPUS, dataclasses.replace(load_params("tokenizer", TokenizerParams, PARAMS), vocab_size=400)
    )
    shipped = load_params("model", ModelParams, PARAMS)
    tiny = dataclasses.replace(shipped, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    model = build_model(tiny, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    torch.manual_seed(0)
    for weight in model.parameters():  # large random weights: peaked, prompt-dependent outputs instead of near-ties
        weight.data.normal_(0.0, 0.5)
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
