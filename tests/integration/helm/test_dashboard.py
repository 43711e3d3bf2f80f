"""The Grafana dashboard ConfigMap: off by default; on, it holds the chart's dashboard as valid
JSON, labelled for Grafana's sidecar, in the namespace asked for; the packaged chart has it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from localcluster.helm import CHART_DIR, Helm, HelmError, SetValue
from tests.integration.helm.support import JSON, by_kind

NAMESPACE = "vaclab-system"
CONFIGMAP = "vaclab-bandwidth-dashboard"
KEY = "vaclab-bandwidth.json"
ENABLED: dict[str, SetValue] = {"grafana.dashboard.enabled": True}


def render(
    helm: Helm, values: Mapping[str, SetValue] | None = None, chart: Path = CHART_DIR
) -> list[JSON]:
    return helm.template("vaclab-bandwidth", NAMESPACE, values, chart=chart)


def chart_dashboard() -> Any:
    return json.loads((CHART_DIR / "dashboards" / KEY).read_text())


def test_no_dashboard_by_default(offline_helm: Helm) -> None:
    assert by_kind(render(offline_helm), "ConfigMap") == {}


def test_enabled_renders_the_dashboard_as_json_labelled_for_the_sidecar(
    offline_helm: Helm,
) -> None:
    configmap = by_kind(render(offline_helm, ENABLED), "ConfigMap")[CONFIGMAP]
    metadata = configmap["metadata"]
    assert metadata["namespace"] == NAMESPACE
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert metadata["labels"]["app.kubernetes.io/component"] == "dashboard"
    assert "annotations" not in metadata
    assert list(configmap["data"]) == [KEY]
    dashboard = json.loads(configmap["data"][KEY])
    assert dashboard == chart_dashboard()
    assert dashboard["schemaVersion"] == 39


def test_label_namespace_and_annotations_are_configurable(offline_helm: Helm) -> None:
    values: dict[str, SetValue] = {
        **ENABLED,
        "grafana.dashboard.label": "lab.io/dashboard",
        # --set reads 1 as a number; the label value is still the string "1".
        "grafana.dashboard.labelValue": 1,
        "grafana.dashboard.namespace": "monitoring",
        "grafana.dashboard.annotations.grafana_folder": "vaclab",
    }
    metadata = by_kind(render(offline_helm, values), "ConfigMap")[CONFIGMAP]["metadata"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["labels"]["lab.io/dashboard"] == "1"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "vaclab"}


def test_lint_is_clean_with_the_dashboard(offline_helm: Helm) -> None:
    output = offline_helm.lint(values=ENABLED)
    assert "1 chart(s) linted, 0 chart(s) failed" in output
    assert "[WARNING]" not in output and "[ERROR]" not in output


def test_the_packaged_chart_carries_the_dashboard(offline_helm: Helm, tmp_path: Path) -> None:
    archive = offline_helm.package(tmp_path)
    configmap = by_kind(render(offline_helm, ENABLED, chart=archive), "ConfigMap")[CONFIGMAP]
    assert json.loads(configmap["data"][KEY]) == chart_dashboard()


def test_a_non_boolean_switch_is_refused(offline_helm: Helm) -> None:
    with pytest.raises(HelmError, match="grafana/dashboard/enabled"):
        render(offline_helm, {"grafana.dashboard.enabled": "yes"})
