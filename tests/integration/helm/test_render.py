"""``helm lint`` and ``helm template`` of the chart, default and non-default values, with the
rendered objects parsed and the daemons' own argument parsers reading the rendered args."""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from accounting.cli import parse_args as parse_accounting_args
from accounting.cli import settings_from_args
from localcluster.crds import default_crd_dir
from localcluster.helm import CHART_DIR, Helm, HelmError, SetValue, set_flags
from scheduler.cli import build_parser as scheduler_parser
from scheduler.cli import config_from_args
from scheduler.config import SchedulerConfig
from tests.integration.helm.support import JSON, by_kind, container_args

NAMESPACE = "vaclab-system"
SCHEDULER = "vaclab-bandwidth-scheduler"
ACCOUNTING = "vaclab-bandwidth-accounting"
CNI = ("kubernetes.io/egress-bandwidth", "kubernetes.io/ingress-bandwidth")
KUBE_OVN = ("ovn.kubernetes.io/egress_rate", "ovn.kubernetes.io/ingress_rate")

SEED: dict[str, SetValue] = {
    "manager.bandwidth.network.uplink": 10000,
    "manager.annotations.egress": "x.io/e",
}
VARIANTS: dict[str, dict[str, SetValue]] = {
    "default": {},
    "kube-ovn": {"annotations.preset": "kube-ovn"},
    "seed": SEED,
    "no-leader-election": {"leaderElection.enabled": False},
    "service-monitor": {"serviceMonitor.enabled": True},
}


def render(helm: Helm, values: Mapping[str, SetValue] | None = None) -> list[JSON]:
    return helm.template("vaclab-bandwidth", NAMESPACE, values)


def flags(args: list[str]) -> dict[str, str]:
    """``--name=value`` and bare ``--name`` (as ``"true"``), each flag given at most once."""
    parsed: dict[str, str] = {}
    for arg in args:
        name, _, value = arg.partition("=")
        assert name.startswith("--") and name not in parsed, arg
        parsed[name] = value if value else "true"
    return parsed


def daemon_args(objects: list[JSON]) -> tuple[list[str], list[str]]:
    deployments = by_kind(objects, "Deployment")
    return container_args(deployments[SCHEDULER]), container_args(deployments[ACCOUNTING])


def scheduler_config(args: list[str]) -> SchedulerConfig:
    return config_from_args(scheduler_parser().parse_args(args))


@pytest.mark.parametrize("variant", VARIANTS)
def test_lint_is_clean_in_strict_mode(offline_helm: Helm, variant: str) -> None:
    output = offline_helm.lint(values=VARIANTS[variant])
    assert "1 chart(s) linted, 0 chart(s) failed" in output
    assert "[WARNING]" not in output and "[ERROR]" not in output


def test_defaults_render_both_daemons_hardened_with_probes(offline_helm: Helm) -> None:
    objects = render(offline_helm)
    kinds = sorted({(o["kind"], o["metadata"]["name"]) for o in objects})
    assert kinds == [
        ("ClusterRole", "vaclab-bandwidth-accounting"),
        ("ClusterRole", "vaclab-bandwidth-admin"),
        ("ClusterRole", "vaclab-bandwidth-editor"),
        ("ClusterRole", "vaclab-bandwidth-scheduler"),
        ("ClusterRole", "vaclab-bandwidth-viewer"),
        ("ClusterRoleBinding", "vaclab-bandwidth-accounting"),
        ("ClusterRoleBinding", "vaclab-bandwidth-scheduler"),
        ("Deployment", ACCOUNTING),
        ("Deployment", SCHEDULER),
        ("PodDisruptionBudget", ACCOUNTING),
        ("PodDisruptionBudget", SCHEDULER),
        ("Role", "vaclab-bandwidth-accounting-leader-election"),
        ("Role", "vaclab-bandwidth-scheduler-leader-election"),
        ("RoleBinding", "vaclab-bandwidth-accounting-leader-election"),
        ("RoleBinding", "vaclab-bandwidth-scheduler-leader-election"),
        ("Service", "vaclab-bandwidth-metrics"),
        ("ServiceAccount", ACCOUNTING),
        ("ServiceAccount", SCHEDULER),
    ]
    app_version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    for name, command in ((SCHEDULER, "vaclab-scheduler"), (ACCOUNTING, "vaclab-accounting")):
        deployment = by_kind(objects, "Deployment")[name]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert deployment["spec"]["replicas"] == 1
        assert pod["serviceAccountName"] == name
        assert container["command"] == [command]
        assert container["image"] == f"ghcr.io/vacp2p/vaclab-bandwidth-scheduler:{app_version}"
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"metrics": 8080, "health": 8081}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        args = flags(container["args"])
        assert args["--metrics-bind-address"] == ":8080"
        assert args["--health-probe-bind-address"] == ":8081"
        assert args["--log-format"] == "json"
        assert args["--leader-elect"] == "true"
        assert args["--leader-elect-resource-namespace"] == NAMESPACE
        assert pod["priorityClassName"] == "system-cluster-critical"
        selector = deployment["spec"]["selector"]["matchLabels"]
        # Replicas prefer different nodes; a drain takes one of them at a time.
        assert pod["affinity"] == {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": selector},
                        },
                    }
                ]
            }
        }
        budget = by_kind(objects, "PodDisruptionBudget")[name]["spec"]
        assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
        assert set(selector.items()) <= set(
            deployment["spec"]["template"]["metadata"]["labels"].items()
        )
    service = by_kind(objects, "Service")["vaclab-bandwidth-metrics"]
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    # The one Service fronts both daemons: its selector names no component.
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "vaclab-bandwidth",
        "app.kubernetes.io/instance": "vaclab-bandwidth",
    }


def test_default_values_configure_the_daemons_as_documented(offline_helm: Helm) -> None:
    scheduler_args, accounting_args = daemon_args(render(offline_helm))
    config = scheduler_config(scheduler_args)
    assert config.scheduler_name == "vaclab-scheduler"
    assert (config.request_policy.keys.egress, config.request_policy.keys.ingress) == CNI
    assert config.weights == SchedulerConfig().weights
    settings = settings_from_args(parse_accounting_args(accounting_args))
    assert (settings.annotation_keys.egress, settings.annotation_keys.ingress) == CNI
    capacity = settings.default_capacity
    assert (capacity.network.ul_mbps, capacity.network.dl_mbps) == (1000, 1000)
    assert (capacity.local.ul_mbps, capacity.local.dl_mbps) == (20000, 20000)


def test_kube_ovn_preset_sets_both_daemons_annotation_keys(offline_helm: Helm) -> None:
    scheduler_args, accounting_args = daemon_args(render(offline_helm, VARIANTS["kube-ovn"]))
    keys = scheduler_config(scheduler_args).request_policy.keys
    assert (keys.egress, keys.ingress) == KUBE_OVN
    settings = settings_from_args(parse_accounting_args(accounting_args))
    assert (settings.annotation_keys.egress, settings.annotation_keys.ingress) == KUBE_OVN


def test_seed_chart_values_still_work(offline_helm: Helm) -> None:
    """``--set manager.bandwidth.network.uplink=10000 --set manager.annotations.egress=...``"""
    scheduler_args, accounting_args = daemon_args(render(offline_helm, SEED))
    settings = settings_from_args(parse_accounting_args(accounting_args))
    assert settings.default_capacity.network.ul_mbps == 10000
    assert settings.default_capacity.network.dl_mbps == 1000
    assert (settings.annotation_keys.egress, settings.annotation_keys.ingress) == ("x.io/e", CNI[1])
    keys = scheduler_config(scheduler_args).request_policy.keys
    assert (keys.egress, keys.ingress) == ("x.io/e", CNI[1])
    # A seed value of 0 is a value, not "unset".
    local = {
        "manager.bandwidth.local.downlink": 0,
        "accounting.defaultCapacity.local.uplinkMbps": 7,
    }
    _, accounting_args = daemon_args(render(offline_helm, local))
    capacity = settings_from_args(parse_accounting_args(accounting_args)).default_capacity.local
    assert (capacity.ul_mbps, capacity.dl_mbps) == (7, 0)


def test_scheduler_values_reach_its_flags(offline_helm: Helm) -> None:
    values: dict[str, SetValue] = {
        "schedulerName": "lab-scheduler",
        "scheduler.replicas": 3,
        "scheduler.weights.colocation": 0,
        "scheduler.weights.bandwidthHeadroom": 7,
        "scheduler.defaultEgress": "10M",
        "scheduler.priorityClassName": "system-cluster-critical",
        "logLevel": "debug",
    }
    objects = render(offline_helm, values)
    deployment = by_kind(objects, "Deployment")[SCHEDULER]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    args = container_args(deployment)
    assert flags(args)["--log-level"] == "debug"
    config = scheduler_config(args)
    assert config.scheduler_name == "lab-scheduler"
    assert (config.weights.colocation, config.weights.bandwidth_headroom) == (0, 7)
    assert config.request_policy.default_egress_mbps == 10
    # The scheduler's lease is named after the scheduler, and only that lease may be renewed.
    role = by_kind(objects, "Role")["vaclab-bandwidth-scheduler-leader-election"]
    assert flags(args)["--leader-elect-resource-name"] == "lab-scheduler"
    assert role["rules"][1]["resourceNames"] == ["lab-scheduler"]


def test_leader_election_off_renders_no_flag_and_no_lease_role(offline_helm: Helm) -> None:
    objects = render(offline_helm, VARIANTS["no-leader-election"])
    assert by_kind(objects, "Role") == {} and by_kind(objects, "RoleBinding") == {}
    for args in daemon_args(objects):
        assert not any(arg.startswith("--leader-elect") for arg in args)


def test_rendered_args_are_accepted_by_both_daemons(offline_helm: Helm) -> None:
    for variant in VARIANTS.values():
        scheduler_args, accounting_args = daemon_args(render(offline_helm, variant))
        namespace = scheduler_parser().parse_args(scheduler_args)
        assert namespace.leader_elect is (variant.get("leaderElection.enabled") is not False)
        parse_accounting_args(accounting_args)


def test_service_monitor_scrapes_the_metrics_service(offline_helm: Helm) -> None:
    assert by_kind(render(offline_helm), "ServiceMonitor") == {}
    objects = render(offline_helm, {**VARIANTS["service-monitor"], "serviceMonitor.labels.a": "b"})
    monitor = by_kind(objects, "ServiceMonitor")["vaclab-bandwidth-metrics"]
    service = by_kind(objects, "Service")["vaclab-bandwidth-metrics"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["a"] == "b"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")


def test_user_roles_read_or_write_bandwidths_only(offline_helm: Helm) -> None:
    roles = by_kind(render(offline_helm), "ClusterRole")
    viewer = roles["vaclab-bandwidth-viewer"]["rules"]
    editor = roles["vaclab-bandwidth-editor"]["rules"]
    assert viewer[0] == {
        "apiGroups": ["networking.vaclab.org"],
        "resources": ["bandwidths"],
        "verbs": ["get", "list", "watch"],
    }
    assert set(editor[0]["verbs"]) == {
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
    }
    for rules in (viewer, editor, roles["vaclab-bandwidth-admin"]["rules"]):
        assert {group for rule in rules for group in rule["apiGroups"]} == {"networking.vaclab.org"}
    aggregated = by_kind(
        render(offline_helm, {"rbac.aggregateToDefaultRoles": True}), "ClusterRole"
    )
    labels = aggregated["vaclab-bandwidth-viewer"]["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert (
        "rbac.authorization.k8s.io/aggregate-to-view"
        not in roles["vaclab-bandwidth-viewer"]["metadata"]["labels"]
    )


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"annotations.preset": "custom"}, "annotations.egress is required"),
        ({"annotations.preset": "calico"}, "annotations/preset"),
        ({"manager.bandwidth.network.uplink": "10G"}, "manager/bandwidth/network/uplink"),
        ({"scheduler.weights.colocation": -1}, "scheduler/weights/colocation"),
        ({"accounting.resyncPeriod": "often"}, "accounting/resyncPeriod"),
        (
            {"scheduler.replicas": 2, "leaderElection.enabled": False},
            "scheduler.replicas=2 needs leaderElection.enabled=true: without a Lease every "
            "replica would schedule at once",
        ),
        (
            {"accounting.replicas": 3, "leaderElection.enabled": False},
            "accounting.replicas=3 needs leaderElection.enabled=true",
        ),
        ({"podDisruptionBudget.maxUnavailable": "half"}, "podDisruptionBudget/maxUnavailable"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(
    offline_helm: Helm, values: dict[str, SetValue], complaint: str
) -> None:
    with pytest.raises(HelmError, match=complaint):
        render(offline_helm, values)


def test_custom_annotation_keys(offline_helm: Helm) -> None:
    values: dict[str, SetValue] = {
        "annotations.preset": "custom",
        "annotations.egress": "lab.io/up",
        "annotations.ingress": "lab.io/down",
    }
    scheduler_args, accounting_args = daemon_args(render(offline_helm, values))
    for args in (scheduler_args, accounting_args):
        parsed = flags(args)
        assert (parsed["--egress-annotation"], parsed["--ingress-annotation"]) == (
            "lab.io/up",
            "lab.io/down",
        )


def _crd_source() -> Any:
    return yaml.safe_load((default_crd_dir() / "bandwidths.networking.vaclab.org.yaml").read_text())


def test_the_crd_comes_from_the_top_level_file(offline_helm: Helm, tmp_path: Path) -> None:
    objects = offline_helm.template("r", NAMESPACE, include_crds=True)
    [crd] = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert crd == _crd_source()
    archive = offline_helm.package(tmp_path)
    with tarfile.open(archive) as tar:
        member = tar.extractfile("vaclab-bandwidth/crds/bandwidths.networking.vaclab.org.yaml")
        assert member is not None
        packaged = member.read()
    assert packaged == (default_crd_dir() / "bandwidths.networking.vaclab.org.yaml").read_bytes()


def test_replicas_with_leader_election_affinity_and_budget_are_configurable(
    offline_helm: Helm,
) -> None:
    objects = render(
        offline_helm,
        {
            "scheduler.replicas": 2,
            "accounting.replicas": 2,
            "podDisruptionBudget.maxUnavailable": "50%",
            "scheduler.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].key": "pool",
            "scheduler.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].operator": "Exists",
            "accounting.priorityClassName": "",
        },
    )
    deployments = by_kind(objects, "Deployment")
    assert {d["spec"]["replicas"] for d in deployments.values()} == {2}
    scheduler = deployments[SCHEDULER]["spec"]["template"]["spec"]
    assert list(scheduler["affinity"]) == ["nodeAffinity"]  # given: replaces the default
    assert "priorityClassName" not in deployments[ACCOUNTING]["spec"]["template"]["spec"]
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert {b["spec"]["maxUnavailable"] for b in budgets.values()} == {"50%"}
    none = render(offline_helm, {"podDisruptionBudget.enabled": False, "scheduler.enabled": False})
    assert by_kind(none, "PodDisruptionBudget") == {}


def test_helm_writes_nothing_on_standard_error(offline_helm: Helm, tmp_path: Path) -> None:
    """No walk.go line about a symbolic link in the chart (nor anything else) on any command."""
    chart = str(CHART_DIR)
    for command in (
        ("template", "r", chart, "--include-crds"),
        ("lint", chart, "--strict"),
        ("package", chart, "--destination", str(tmp_path)),
        ("show", "crds", chart),
    ):
        _, log = offline_helm.run_logged(*command)
        assert log == "", f"helm {command[0]}: {log}"


def test_notes_say_the_image_is_a_placeholder_and_give_the_plugin_its_flags(
    cluster_helm: Helm,
) -> None:
    def notes(values: Mapping[str, SetValue]) -> str:
        out = cluster_helm.run(
            "install", "notes", str(CHART_DIR), "--namespace", NAMESPACE, "--dry-run",
            *set_flags(values),
        )  # fmt: skip
        return " ".join(out.split("NOTES:", 1)[1].split())  # one line: NOTES wraps freely

    default = notes({})
    assert "is the chart's placeholder: no image is published" in default
    assert "kubectl bandwidth status --" not in default  # the plugin's defaults match
    ovn = notes({"annotations.preset": "kube-ovn", "image.repository": "lab.io/vaclab"})
    assert "placeholder" not in ovn
    assert (
        "kubectl bandwidth status --egress-annotation ovn.kubernetes.io/egress_rate "
        "--ingress-annotation ovn.kubernetes.io/ingress_rate"
    ) in ovn
    renamed = notes({"schedulerName": "lab-scheduler"})
    assert "kubectl bandwidth status --scheduler-name lab-scheduler" in renamed
