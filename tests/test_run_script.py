"""``./run``: unknown jobs are named, and the venv is installed once per needed extra / metadata change.

The script runs in a copy of itself next to dummy package metadata, with a fake venv whose
``python`` and ``scae`` only record how they were called, so no real install happens.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_PYTHON = '#!/bin/sh\necho "python $*" >> "$(dirname "$0")/../calls"\n'
FAKE_SCAE = '#!/bin/sh\necho "scae $*"\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "run", tmp_path / "run")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n")
    (tmp_path / "pyproject.toml").write_text("[build-system]\n")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("scae", FAKE_SCAE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return tmp_path


def _run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCAE_VENV": "venv"}
    return subprocess.run([str(project / "run"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=60)


def _installs(project: Path) -> list[str]:
    calls = project / "venv" / "calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if "pip install -e" in line]


def test_unknown_job_is_named_lists_the_jobs_and_exits_2(project: Path):
    proc = _run(project, "dmeo")
    assert proc.returncode == 2
    assert "unknown job 'dmeo'" in proc.stderr
    for job in ("./run demo", "./run test", "./run scae"):
        assert job in proc.stderr
    assert "set -euo" not in proc.stderr + proc.stdout
    assert _installs(project) == []


def test_help_prints_the_jobs_and_exits_0(project: Path):
    proc = _run(project, "help")
    assert proc.returncode == 0 and "./run demo" in proc.stdout and "set -euo" not in proc.stdout


def test_installs_once_then_only_for_a_missing_extra_or_changed_metadata(project: Path):
    first = _run(project, "test", "-q")
    assert first.returncode == 0, first.stderr
    assert "installing scae-tf[dev,train]" in first.stderr
    assert _installs(project) == ["python -m pip install -e .[dev,train]"]

    for args in (("scae", "--version"), ("demo",), ("test",)):  # train is a subset of train,dev
        again = _run(project, *args)
        assert again.returncode == 0 and again.stderr == "", again.stderr
    assert len(_installs(project)) == 1
    assert "scae --version" in _run(project, "scae", "--version").stdout

    (project / "setup.cfg").write_text("[metadata]\nname = x\nversion = 2\n")
    changed = _run(project, "scae", "--version")
    assert "setup.cfg or pyproject.toml changed" in changed.stderr
    assert _installs(project)[-1] == "python -m pip install -e .[dev,train]"  # keeps the dev extra
    assert _run(project, "test").stderr == ""


def test_a_train_only_venv_installs_the_dev_extra_for_tests(project: Path):
    assert "installing scae-tf[train]" in _run(project, "scae", "x").stderr
    proc = _run(project, "test")
    assert "adds the dev extra" in proc.stderr
    assert _installs(project) == ["python -m pip install -e .[train]", "python -m pip install -e .[dev,train]"]
