"""The chart's files agree with the rest of the repository: the CRD is the top-level one, the
app version is the package's, the commands are its console scripts, and every value is
documented in the chart's README (and every documented key exists)."""

from __future__ import annotations

import configparser
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from localcluster.crds import default_crd_dir
from localcluster.helm import CHART_DIR

ROOT = Path(__file__).resolve().parents[2]
CRD_NAME = "bandwidths.networking.vaclab.org.yaml"


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def console_scripts() -> set[str]:
    entries = setup_cfg()["options.entry_points"]["console_scripts"]
    return {line.split("=")[0].strip() for line in entries.strip().splitlines()}


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


def test_the_crd_lives_in_the_chart_and_the_top_level_file_links_to_it() -> None:
    """One source: helm reads links with a warning on every command, so the chart holds the
    file and the repository's crds/ (kubectl apply -f crds/, the tests) links to it."""
    chart_file = CHART_DIR / "crds" / CRD_NAME
    assert chart_file.is_file() and not chart_file.is_symlink()
    assert sorted(p.name for p in (CHART_DIR / "crds").iterdir()) == [CRD_NAME]
    link = default_crd_dir() / CRD_NAME
    assert link.is_symlink()
    assert os.readlink(link) == f"../helm/vaclab-bandwidth/crds/{CRD_NAME}"
    assert link.resolve() == chart_file.resolve()
    assert sorted(p.name for p in default_crd_dir().iterdir()) == [CRD_NAME]


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["appVersion"] == setup_cfg()["metadata"]["version"]


def test_container_commands_are_the_packages_console_scripts() -> None:
    commands = set()
    for template in (CHART_DIR / "templates").glob("*.yaml"):
        commands |= set(re.findall(r'command: \["([^"]+)"\]', template.read_text()))
    assert commands == {"vaclab-scheduler", "vaclab-accounting"}
    assert commands <= console_scripts()


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found += _leaves(value, f"{path}.")
        else:
            found.append(path)
    return found


def _documented_keys() -> list[str]:
    """First-column keys of the README's values table; ``.x`` is a sibling of the key before."""
    readme = (CHART_DIR / "README.md").read_text()
    table = readme.split("## Values", 1)[1].split("\n## ", 1)[0]
    keys: list[str] = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        previous = ""
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            key = previous.rsplit(".", 1)[0] + name if name.startswith(".") else name
            keys.append(key)
            previous = key
    return keys


def _exists(tree: dict[str, Any], key: str) -> bool:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_value_is_documented_and_every_documented_key_exists() -> None:
    documented = _documented_keys()
    tree = values()
    assert [key for key in documented if not _exists(tree, key)] == []
    undocumented = [
        leaf
        for leaf in _leaves(tree)
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in documented)
    ]
    assert undocumented == []


def test_the_schema_types_every_top_level_value() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert set(values()) <= set(schema["properties"])
