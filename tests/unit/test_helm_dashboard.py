"""The chart's Grafana dashboard asks Prometheus only for series the daemons export.

Every metric name in a panel's PromQL (and in the template variables' queries) is one the code
defines, spelled as Prometheus exposes it for its type: a counter with ``_total``, a histogram
through ``_bucket``, ``_sum`` or ``_count``, a gauge as is. Label matchers, ``by`` clauses and
``label_values`` name labels the metric has, and ``datapath``/``direction`` values are axes of
:mod:`bandwidth.budget`.

The names come from the source (every ``Counter(``/``Gauge(``/``Histogram(`` call whose first
argument is a ``vaclab_`` string, in the daemons' packages), checked against what the metric
classes (the scheduler's, the accounting controller's and ``kubeio.metrics``) register into a
fresh ``CollectorRegistry``, so the parse cannot miss a metric or misread its type or labels.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from accounting.metrics import AccountingMetrics
from bandwidth.budget import Datapath, Direction
from kubeio.metrics import DaemonMetrics
from localcluster.helm import CHART_DIR
from scheduler.metrics import SchedulerMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = CHART_DIR / "dashboards" / "vaclab-bandwidth.json"
PACKAGES = ("scheduler", "accounting", "kubeio", "bandwidth")
KINDS = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
LABEL_VALUES = {"datapath": {p.value for p in Datapath}, "direction": {d.value for d in Direction}}

NAME = re.compile(r"\bvaclab_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(vaclab_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
RATED = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*(vaclab_[a-z0-9_]+)")
LABEL_VALUES_CALL = re.compile(r"label_values\(\s*(vaclab_[a-z0-9_]+)[^,]*,\s*(\w+)\s*\)")


@dataclass(frozen=True)
class Metric:
    name: str  # the family name: a counter's without ``_total``
    kind: str  # counter, gauge, histogram or summary
    labels: frozenset[str]

    def series(self) -> dict[str, str]:
        """Names of the series Prometheus scrapes, each with what it is."""
        if self.kind == "counter":
            return {f"{self.name}_total": "counter"}
        if self.kind in ("histogram", "summary"):
            parts = ("bucket", "sum", "count") if self.kind == "histogram" else ("sum", "count")
            return {f"{self.name}_{part}": part for part in parts}
        return {self.name: self.kind}


def _callee(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    constants: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            constants[node.target.id] = node.value
    return constants


def _label_names(call: ast.Call, constants: dict[str, ast.expr]) -> frozenset[str]:
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg == "labelnames":
            node = keyword.value
    if node is None:
        return frozenset()
    if isinstance(node, ast.Name):
        node = constants[node.id]
    return frozenset(ast.literal_eval(node))


def metrics_in_source() -> dict[str, Metric]:
    """Every ``vaclab_`` metric constructed in the daemons' packages, by family name."""
    found: dict[str, Metric] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            constants = _module_constants(tree)
            for call in ast.walk(tree):
                if not (isinstance(call, ast.Call) and _callee(call.func) in KINDS and call.args):
                    continue
                first = call.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                if not first.value.startswith("vaclab_"):
                    continue
                kind = KINDS[_callee(call.func)]
                # prometheus_client takes a counter's name with or without the suffix.
                name = first.value.removesuffix("_total") if kind == "counter" else first.value
                assert name not in found, f"{name} is defined twice ({path})"
                found[name] = Metric(name, kind, _label_names(call, constants))
    return found


def registered_metrics() -> CollectorRegistry:
    """A fresh registry holding both metric classes, every labelled metric with one child."""
    registry = CollectorRegistry()
    source = metrics_in_source()
    for holder in (
        SchedulerMetrics(registry),
        AccountingMetrics(registry),
        DaemonMetrics(registry, "x"),
    ):
        for wrapper in vars(holder).values():
            if not isinstance(wrapper, MetricWrapperBase):
                continue
            [family] = wrapper.describe()
            labels = source[family.name].labels if family.name in source else frozenset()
            if labels:
                # Refused (ValueError) unless these are exactly the metric's label names.
                wrapper.labels(**dict.fromkeys(labels, "x"))
    return registry


DEFINED = metrics_in_source()
SERIES: dict[str, tuple[Metric, str]] = {
    series: (metric, part)
    for metric in DEFINED.values()
    for series, part in metric.series().items()
}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels and rows, with the panels a collapsed row holds."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets, then the query variables' queries."""
    found = [
        str(target["expr"])
        for panel in all_panels(board["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(str(query["query"] if isinstance(query, dict) else query))
    return found


def problems(expr: str) -> list[str]:
    """What in ``expr`` does not match the metrics the code defines (empty: all good)."""
    found: list[str] = []
    referenced: list[tuple[Metric, str]] = []
    for name in NAME.findall(expr):
        if name not in SERIES:
            family = DEFINED.get(name.removesuffix("_total"))
            hint = f" (a {family.kind}: {sorted(family.series())})" if family else ""
            found.append(f"{name} is not a series the code exports{hint}")
        else:
            referenced.append(SERIES[name])
    known = {metric.name: metric for metric, _ in referenced}
    for metric, part in referenced:
        if part == "bucket" and "histogram_quantile(" not in expr:
            found.append(f"{metric.name}_bucket outside histogram_quantile")
    for name in RATED.findall(expr):
        if name in SERIES and SERIES[name][1] not in ("counter", "bucket", "sum", "count"):
            found.append(f"rate of {name}, a {SERIES[name][1]}")
    for name, matchers in SELECTOR.findall(expr):
        if name not in SERIES:
            continue
        metric = SERIES[name][0]
        allowed = metric.labels | ({"le"} if SERIES[name][1] == "bucket" else set())
        for label, op, value in MATCHER.findall(matchers):
            if label not in allowed:
                found.append(f"{name} has no label {label}")
            elif op == "=" and label in LABEL_VALUES and value not in LABEL_VALUES[label]:
                found.append(f'{label}="{value}": not one of {sorted(LABEL_VALUES[label])}')
    grouping_labels = frozenset().union(*(m.labels for m in known.values()))
    if any(part == "bucket" for _, part in referenced):
        grouping_labels |= {"le"}
    for clause in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in clause.split(","))):
            if label not in grouping_labels:
                found.append(f"by ({label}): no metric of the expression has that label")
    for name, label in LABEL_VALUES_CALL.findall(expr):
        if name in SERIES and label not in SERIES[name][0].labels:
            found.append(f"label_values: {name} has no label {label}")
    return found


def test_the_source_parse_agrees_with_the_registered_metric_classes() -> None:
    registered = {
        family.name: (family.type, {frozenset(s.labels) - {"le"} for s in family.samples})
        for family in registered_metrics().collect()
    }
    for name, (kind, label_sets) in registered.items():
        assert name in DEFINED, f"{name} is registered but the source parse missed it"
        assert DEFINED[name].kind == kind, name
        assert label_sets == {DEFINED[name].labels}, name
    assert set(DEFINED) == set(registered)


def test_every_query_uses_only_series_and_labels_the_code_defines() -> None:
    expressions = queries(dashboard())
    assert len(expressions) > 20
    assert {expr: problems(expr) for expr in expressions if problems(expr)} == {}


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("rate(vaclab_scheduler_schedule_attempt_total[5m])", "not a series"),
        ("rate(vaclab_scheduler_schedule_attempts[5m])", "not a series"),
        ("vaclab_scheduler_pod_scheduling_duration_seconds", "not a series"),
        ("vaclab_accounting_used_mbps_bucket", "not a series"),
        ("vaclab_api_requests_total_count", "not a series"),
        (
            "rate(vaclab_scheduler_binding_duration_seconds_bucket[5m])",
            "outside histogram_quantile",
        ),
        ("rate(vaclab_accounting_used_mbps[5m])", "rate of vaclab_accounting_used_mbps, a gauge"),
        ('vaclab_accounting_used_mbps{nodename="a"}', "has no label nodename"),
        ('vaclab_accounting_used_mbps{datapath="nic"}', 'datapath="nic"'),
        ("sum by (queue) (vaclab_scheduler_unschedulable_pods)", "by (queue)"),
        ("label_values(vaclab_accounting_oversubscribed_nodes, node)", "has no label node"),
    ],
)
def test_a_wrong_name_or_label_is_reported(expr: str, complaint: str) -> None:
    assert any(complaint in problem for problem in problems(expr)), problems(expr)


def test_grafana_schema_variables_and_rows() -> None:
    board = dashboard()
    assert board["schemaVersion"] == 39
    assert board["uid"] == "vaclab-bandwidth"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    node = variables["node"]
    query = node["query"]["query"] if isinstance(node["query"], dict) else node["query"]
    assert (node["type"], query) == ("query", "label_values(vaclab_accounting_capacity_mbps, node)")
    assert node["multi"] and node["includeAll"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Scheduling", "Bandwidth", "Accounting", "Kubernetes API"]


def test_every_panel_queries_the_chosen_datasource_and_has_its_own_place() -> None:
    panels = list(all_panels(dashboard()["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()
