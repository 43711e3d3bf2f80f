"""The Dockerfile the chart's image is built from (no engine here to build it): a pinned
base, a numeric non-root user that the chart's security context matches, the package
installed without dev extras, and no entrypoint, so the chart's command picks the daemon."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

from localcluster.helm import CHART_DIR

ROOT = Path(__file__).resolve().parents[2]
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[Instruction]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_every_stage_starts_from_the_pinned_python_base() -> None:
    steps = instructions()
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    bases = [rest.split()[0] for keyword, rest in steps if keyword == "FROM"]
    assert len(bases) == 2
    for base in bases:
        resolved = args[base[2:-1]] if base.startswith("${") else base
        assert PINNED_BASE.match(resolved), resolved


def test_the_image_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    [user] = [rest for keyword, rest in final_stage() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0
    pod = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["podSecurityContext"]
    assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, int(uid), int(gid))


def test_the_package_is_installed_without_extras_or_editable_mode() -> None:
    installs = [
        rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest
    ]
    assert len(installs) == 1
    command = installs[0].split("pip install", 1)[1].split("&&")[0].split()
    assert command == ["."]


def test_no_entrypoint_and_the_default_command_is_a_console_script() -> None:
    stage = final_stage()
    assert [keyword for keyword, _ in stage if keyword == "ENTRYPOINT"] == []
    [cmd] = [rest for keyword, rest in stage if keyword == "CMD"]
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    scripts = parser["options.entry_points"]["console_scripts"]
    assert yaml.safe_load(cmd)[0] in {line.split("=")[0].strip() for line in scripts.splitlines()}


def test_the_build_context_holds_every_package_and_no_tests() -> None:
    copies = [rest for keyword, rest in instructions() if keyword == "COPY"]
    assert copies == [". .", "--from=build /opt/vaclab /opt/vaclab"]
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "helm"} <= ignored
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    packages = [p.rstrip("*") for p in parser["options.packages.find"]["include"].split()]
    needed = {"setup.cfg", "pyproject.toml", "README.md", *packages}
    assert needed & ignored == set()
    assert all((ROOT / name).exists() for name in needed)
