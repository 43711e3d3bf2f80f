"""The package installs without setuptools warnings and ships the Go wrapper module."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _source_copy(tmp_path: Path) -> Path:
    """The work tree without its build products (a build writes build/ and *.egg-info)."""
    junk = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
    )
    return Path(shutil.copytree(ROOT, tmp_path / "src", ignore=junk))


def test_editable_install_prints_no_setuptools_warning(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    done = _pip(
        "install",
        "--quiet",
        "--no-deps",
        "--ignore-installed",
        "-e",
        ".",
        "--prefix",
        str(tmp_path / "p"),
        cwd=source,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_wheel_carries_localcluster_gobuild(tmp_path: Path) -> None:
    done = _pip(
        "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), ".", cwd=_source_copy(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"localcluster/gobuild/go.mod", "localcluster/gobuild/go.sum"} <= names
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]
    assert "scheduler/py.typed" in names
