"""A throwaway copy of the demo fan line per test, under git, with a model trained once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.cli import DEMO_FILES
from tests.conftest import ROOT

PIPELINE = "default"  # scikit-learn only: trains in a few seconds (the demo's is `accurate`)


def copy_demo(target: Path) -> Path:
    for name in DEMO_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)
    return target


def git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The demo's content in a git repository: what a content team reviews with `git diff`."""
    target = copy_demo(tmp_path / "fanline")
    git(target, "init", "-q")
    git(target, "add", ".")
    git(target, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "demo")
    return target


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's model for PIPELINE, trained once: a project copy starts with it."""
    from bot.nlu import train
    from bot.nlu.config import project_config
    from bot.nlu.data import load_training_data

    out = tmp_path_factory.mktemp("models")
    cfg = project_config(ROOT / "config.yml", PIPELINE)
    train(cfg, load_training_data([ROOT / "data"]), out, progress=False)
    return out


@pytest.fixture
def trained_project(project: Path, demo_models: Path) -> Path:
    shutil.copytree(demo_models, project / "models")
    return project
