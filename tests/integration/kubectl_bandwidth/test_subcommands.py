"""Every subcommand against the real control plane, with pods the scheduler really placed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from kubeio.resources import BANDWIDTHS, DEPLOYMENTS, PODS, STATEFULSETS
from kubeio.rest import MERGE_PATCH, KubeApi
from localcluster import ControlPlane
from tests.integration.kubectl_bandwidth.conftest import Kubectl
from tests.integration.scheduler.conftest import (
    create_pod,
    ledger,
    pod_body,
    pods_in,
    wait_until,
)


def cells(line: str) -> list[str]:
    """A table line's cells (columns are three or more spaces apart)."""
    return re.split(r"\s{3,}", line.strip())


def row(run_lines: list[str], first_cell: str) -> list[str]:
    return next(cells(line) for line in run_lines if cells(line)[0] == first_cell)


def template(app: str, scheduler_name: str, mbps: int) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": app},
            "annotations": {
                "kubernetes.io/egress-bandwidth": f"{mbps}M",
                "kubernetes.io/ingress-bandwidth": f"{mbps}M",
            },
        },
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


def bound(kube: KubeApi, namespace: str, app: str | None = None) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["spec"]["nodeName"]
        for p in pods_in(kube, namespace)
        if p["spec"].get("nodeName")
        and (app is None or (p["metadata"].get("labels") or {}).get("app") == app)
    }


def pod_scheduled_message(kube: KubeApi, namespace: str, name: str) -> str:
    pod = kube.get(PODS.path(namespace=namespace, name=name))
    for condition in pod["status"].get("conditions") or []:
        if condition["type"] == "PodScheduled" and condition["status"] == "False":
            return str(condition["message"])
    return ""


def test_status_explain_and_reservations_of_a_scheduled_statefulset(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
    kubectl: Kubectl,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes[:2], network=(1000, 1000))
    run_scheduler()
    kube.create(
        STATEFULSETS.path(namespace=namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "peers"},
            "spec": {
                "replicas": 3,
                "podManagementPolicy": "Parallel",
                "serviceName": "peers",
                "selector": {"matchLabels": {"app": "peers"}},
                "template": template("peers", scheduler_name, 300),
            },
        },
    )
    placed = wait_until(
        lambda: (b := bound(kube, namespace, "peers")) and len(b) == 3 and b,
        timeout=60,
        what="3 StatefulSet pods bound",
    )
    (full,) = set(placed.values())  # siblings share a node
    (other,) = set(nodes[:2]) - {full}
    bare = nodes[2]
    # A pod another scheduler placed: no reservation, charged as observed.
    create_pod(
        kube,
        namespace,
        pod_body("outsider", "default-scheduler", egress="50M", extra_spec={"nodeName": other}),
    )
    wait_until(lambda: "outsider" in bound(kube, namespace), what="outsider created")

    status = kubectl("status")
    assert status.code == 0, status.err
    assert row(status.lines, full) == [
        full, "█····· 900/20000 (19100 free)", "█····· 900/20000 (19100 free)",
        "█████· 900/1000 (100 free)", "█████· 900/1000 (100 free)", "3",
    ]  # fmt: skip
    assert row(status.lines, other) == [
        other, "█····· 50/20000 (19950 free)", "······ 0/20000 (20000 free)",
        "█····· 50/1000 (950 free)", "······ 0/1000 (1000 free)", "1",
    ]  # fmt: skip
    assert row(status.lines, bare) == [bare, "-", "-", "-", "-", "0"]
    assert f"{bare}: no Bandwidth object" in status.lines

    by_free = kubectl("status", "--sort-by", "network-free")
    assert [cells(line)[0] for line in by_free.lines[1:4]] == [other, full, bare]
    selected = kubectl("status", "-l", f"kubernetes.io/hostname={other}", "-o", "json")
    (document,) = json.loads(selected.out)["nodes"]
    assert (document["name"], document["observed"], document["reservations"]) == (other, 1, 0)
    assert document["charged"]["network"] == {"ulMbps": 50, "dlMbps": 0}
    wide = kubectl("status", "-o", "wide")
    assert row(wide.lines, full)[-5:] == ["Ready", "-", "3", "0", "-"]

    explained = kubectl("explain", "peers-1", "-n", namespace)
    assert explained.code == 0, explained.err
    assert explained.lines[0] == (
        f"Pod {namespace}/peers-1 is on node {full} (Pending, scheduler {scheduler_name})."
    )
    assert explained.lines[1] == "Request:     300 Mbps up / 300 Mbps down"
    assert explained.lines[2] == "Workload:    StatefulSet/peers: 3 replica(s) expected, 3 placed"
    assert re.fullmatch(
        rf"Reservation: 300 Mbps up / 300 Mbps down in the ledger of {full} "
        rf"by {scheduler_name}, \d+s ago",
        explained.lines[3],
    )
    assert explained.lines[4] == (
        "Node free:   network 100 up / 100 down, local 19100 up / 19100 down (Mbps)"
    )
    outsider = kubectl("explain", "outsider", "-n", namespace)
    assert "Reservation: none in the ledger; charged as Observed (default-scheduler)" in (
        outsider.lines
    )

    held = kubectl("reservations", full)
    assert held.code == 0, held.err
    assert held.lines[0].split() == [
        "POD", "WORKLOAD", "UL", "Mbps", "DL", "Mbps", "LINK-LOCAL", "SOURCE", "POD", "STATE", "AGE"
    ]  # fmt: skip
    for index, line in enumerate(held.lines[1:4]):
        assert cells(line)[:7] == [
            f"{namespace}/peers-{index}", "StatefulSet/peers", "300", "300", "no", "Scheduler",
            "Pending",
        ]  # fmt: skip
        assert re.fullmatch(r"\d+s", cells(line)[7])
    assert held.lines[4] == (
        f"3 pod(s) hold bandwidth on {full}; charged/capacity: local uplink 900/20000, "
        "local downlink 900/20000, network uplink 900/1000, network downlink 900/1000 Mbps."
    )
    # The accounting controller's status.reservations, when present, names the workload.
    uid = next(
        e["podUID"] for e in ledger(kube, full)["spec"]["reservations"] if e["podName"] == "peers-0"
    )
    kube.patch(
        BANDWIDTHS.path(name=full, subresource="status"),
        {"status": {"reservations": [{"podUID": uid, "workload": {"kind": "X", "name": "y"}}]}},
        MERGE_PATCH,
    )
    as_yaml = yaml.safe_load(kubectl("reservations", full, "-o", "yaml").out)
    assert [h["workload"] for h in as_yaml["holders"]] == [
        "X/y",
        "StatefulSet/peers",
        "StatefulSet/peers",
    ]
    observed = kubectl("reservations", other)
    assert cells(observed.lines[1]) == [
        f"{namespace}/outsider", "-", "50", "0", "no", "Observed", "Pending", "-"
    ]  # fmt: skip
    missing = kubectl("reservations", bare)
    assert (missing.code, missing.out) == (1, "")
    assert missing.err == (
        f"kubectl-bandwidth: node {bare!r} has no Bandwidth object (is vaclab-accounting "
        "running? kubectl get bandwidths lists them)\n"
    )


def test_pending_pod_is_explained_with_the_reasons_the_scheduler_wrote(
    kube: KubeApi,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
    kubectl: Kubectl,
) -> None:
    nodes = simulated_nodes(3)
    ledgers(nodes[:2], network=(1000, 1000))
    run_scheduler()
    create_pod(kube, namespace, pod_body("big", scheduler_name, egress="1200M"))
    create_pod(kube, namespace, pod_body("elsewhere", "another-scheduler", egress="100M"))
    written = wait_until(
        lambda: pod_scheduled_message(kube, namespace, "big"), what="big explained by scheduler"
    )
    assert written == (
        "0/3 nodes are available: 2 insufficient network uplink bandwidth (need 1200 Mbps), "
        "1 node(s) had no Bandwidth object yet."
    )

    explained = kubectl("explain", "big", "-n", namespace)
    assert explained.code == 0, explained.err
    assert explained.lines[:4] == [
        f"Pod {namespace}/big is Pending and not bound (scheduler {scheduler_name}).",
        "Request:        1200 Mbps up / 0 Mbps down",
        f"Scheduler said: {written}",
        f"Now:            {written}",
    ]
    table = explained.lines[5:]
    assert cells(table[0]) == [
        "RANK", "NODE", "FITS", "SCORE", "LOCAL UL FREE", "LOCAL DL FREE", "NET UL FREE",
        "NET DL FREE", "REASONS",
    ]  # fmt: skip
    short = "insufficient network uplink bandwidth (need 1200 Mbps)"
    assert [cells(line) for line in table[1:]] == [
        ["-", nodes[0], "no", "-", "20000", "20000", "1000", "1000", short],
        ["-", nodes[1], "no", "-", "20000", "20000", "1000", "1000", short],
        ["-", nodes[2], "no", "-", "-", "-", "-", "-", "node(s) had no Bandwidth object yet"],
    ]
    document = json.loads(kubectl("explain", "big", "-n", namespace, "-o", "json").out)
    assert document["summary"] == document["schedulerMessage"] == written
    assert Counter(r for n in document["nodes"] for r in n["reasons"]) == {
        "insufficient network uplink bandwidth (need 1200 Mbps)": 2,
        "node(s) had no Bandwidth object yet": 1,
    }

    # Feasible nodes come first, ranked by the scheduler's score.
    elsewhere = kubectl("explain", "elsewhere", "-n", namespace)
    assert elsewhere.lines[2] == (
        f"Now:     2/3 nodes are available; the scheduler would choose {nodes[0]}; "
        "the others: 1 node(s) had no Bandwidth object yet."
    )
    assert elsewhere.lines[3].startswith("Note:    the pod names scheduler 'another-scheduler'")
    assert [cells(line)[:3] for line in elsewhere.lines[6:9]] == [
        ["1", nodes[0], "yes"],
        ["2", nodes[1], "yes"],
        ["-", nodes[2], "no"],
    ]
    absent = kubectl("explain", "absent", "-n", namespace)
    assert (absent.code, absent.err) == (
        1,
        f"kubectl-bandwidth: pods 'absent' not found in namespace {namespace}\n",
    )


def test_what_if_says_where_replicas_would_go_and_the_scheduler_agrees(
    kube: KubeApi,
    namespace: str,
    controller_manager: ControlPlane,
    simulated_nodes: Any,
    ledgers: Any,
    run_scheduler: Any,
    scheduler_name: str,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    first, second = simulated_nodes(2)
    ledgers([first, second], network=(1000, 1000))
    run_scheduler()
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "relays", "namespace": namespace},
        "spec": {
            "replicas": 15,
            "selector": {"matchLabels": {"app": "relays"}},
            "template": template("relays", scheduler_name, 100),
        },
    }
    path = tmp_path / "relays.yaml"
    path.write_text(yaml.safe_dump(manifest))

    what_if = kubectl("what-if", "-f", str(path))
    assert what_if.code == 0, what_if.err
    assert what_if.lines[:2] == [
        f"Deployment {namespace}/relays: 15 replica(s), each 100 Mbps up / 100 Mbps down.",
        f"15/15 replica(s) would be placed: 10 on {first}, 5 on {second}.",
    ]
    assert [cells(line) for line in what_if.lines[3:6]] == [
        ["NODE", "PODS", "LOCAL UL FREE (Mbps)", "LOCAL DL FREE (Mbps)", "NET UL FREE (Mbps)",
         "NET DL FREE (Mbps)"],
        [first, "+10", "20000 → 19000 of 20000", "20000 → 19000 of 20000", "1000 → 0 of 1000",
         "1000 → 0 of 1000"],
        [second, "+5", "20000 → 19500 of 20000", "20000 → 19500 of 20000", "1000 → 500 of 1000",
         "1000 → 500 of 1000"],
    ]  # fmt: skip
    too_many = json.loads(kubectl("what-if", "-f", str(path), "--replicas", "23", "-o", "json").out)
    assert Counter(p["node"] for p in too_many["placements"]) == {first: 10, second: 10, None: 3}
    assert not too_many["fits"]
    assert {(p["reason"], p["message"]) for p in too_many["placements"] if p["node"] is None} == {
        (
            "FailedScheduling",
            "0/2 nodes are available: 2 insufficient network downlink bandwidth (need 100 Mbps), "
            "2 insufficient network uplink bandwidth (need 100 Mbps).",
        )
    }
    # Nothing was written: the ledgers are still empty.
    assert [ledger(kube, n)["spec"]["reservations"] for n in (first, second)] == [[], []]

    kube.create(DEPLOYMENTS.path(namespace=namespace), manifest)
    real = wait_until(
        lambda: (b := bound(kube, namespace, "relays")) and len(b) == 15 and b,
        timeout=60,
        what="15 Deployment pods bound",
    )
    assert Counter(real.values()) == {first: 10, second: 5}


def test_the_console_script_is_what_kubectl_runs(
    controlplane: ControlPlane, simulated_nodes: Any, ledgers: Any
) -> None:
    (node,) = simulated_nodes(1)
    ledgers([node], network=(2000, 1000))
    script = Path(sys.executable).parent / "kubectl-bandwidth"
    done = subprocess.run(
        [str(script), "status", "--kubeconfig", str(controlplane.kubeconfig_path), "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    mine = [n for n in yaml.safe_load(done.stdout)["nodes"] if n["name"] == node]
    assert mine[0]["free"]["network"] == {"ulMbps": 2000, "dlMbps": 1000}
