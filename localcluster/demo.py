"""``make demo``: the whole project on a laptop, end to end, in about a minute.

A local control plane with kube-controller-manager, twelve simulated nodes of mixed NICs, our
accounting controller and scheduler as real processes, a StatefulSet of peers and a Deployment
of relays that ask for bandwidth; then one table per node of what was placed and reserved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bandwidth.budget import AXES, Axis, Datapath, Direction
from bandwidth.model import parse_bandwidth
from kubeio.config import load_client_configuration
from kubeio.errors import ApiError
from kubeio.resources import BANDWIDTHS, DEPLOYMENTS, NAMESPACES, PODS, STATEFULSETS
from kubeio.rest import KubeApi
from localcluster.controlplane import ControlPlane
from localcluster.crds import install_crds
from localcluster.nodes import create_simulated_nodes

NAMESPACE = "demo"
SCHEDULER_NAME = "vaclab-scheduler"
CAPACITY_LABEL = "bandwidth.vaclab.org/network-{direction}-mbps"

# (how many nodes, NIC Mbps each way): a mixed lab.
NODE_GROUPS = ((6, 1000), (4, 2500), (2, 10000))


def _workload(kind: str, name: str, replicas: int, egress: str, ingress: str) -> dict[str, Any]:
    template = {
        "metadata": {
            "labels": {"app": name},
            "annotations": {
                "kubernetes.io/egress-bandwidth": egress,
                "kubernetes.io/ingress-bandwidth": ingress,
            },
        },
        "spec": {
            "schedulerName": SCHEDULER_NAME,
            "containers": [
                {
                    "name": "peer",
                    "image": "ghcr.io/vacp2p/nim-libp2p:demo",
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                }
            ],
        },
    }
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": template,
    }
    if kind == "StatefulSet":
        spec.update(serviceName=name, podManagementPolicy="Parallel")
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


WORKLOADS = (
    (STATEFULSETS, _workload("StatefulSet", "libp2p-peers", 24, "200M", "200M")),
    (DEPLOYMENTS, _workload("Deployment", "relays", 8, "1G", "500M")),
)


def _daemon(module: str, kubeconfig: Path, log_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{module}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--health-probe-bind-address",
            "127.0.0.1:0",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _create_nodes(cp: ControlPlane) -> list[str]:
    names: list[str] = []
    with cp.api_client() as client:
        for count, mbps in NODE_GROUPS:
            labels = {
                CAPACITY_LABEL.format(direction="ul"): str(mbps),
                CAPACITY_LABEL.format(direction="dl"): str(mbps),
            }
            names += create_simulated_nodes(
                client, count, name_prefix=f"lab-{mbps // 100:03d}", labels=labels, cpu="16"
            )
    return names


def _short(axis: Axis) -> str:
    datapath = "NET" if axis.datapath is Datapath.NETWORK else "LOCAL"
    return f"{datapath} {'UL' if axis.direction is Direction.UPLINK else 'DL'} (Mbps)"


def _bar(used: int, capacity: int, width: int = 6) -> str:
    filled = 0 if capacity <= 0 else min(width, round(width * used / capacity))
    return "█" * filled + "·" * (width - filled)


def render_table(ledgers: list[dict[str, Any]], pods: list[dict[str, Any]]) -> str:
    """The per-node summary the demo prints: pods, siblings, reserved versus capacity."""
    by_node: dict[str, Counter[str]] = defaultdict(Counter)
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if node:
            by_node[node][pod["metadata"]["labels"].get("app", "-")] += 1
    header = (
        f"{'NODE':<14}{'PODS':>5}  {'SIBLINGS':<20}"
        + "".join(f"{_short(axis):<22}" for axis in AXES)
        + "STATE"
    )
    lines = [header, "-" * len(header)]
    for ledger in sorted(ledgers, key=lambda item: item["metadata"]["name"]):
        view = parse_bandwidth(ledger)
        reserved = view.reserved()
        siblings = ", ".join(f"{app} x{n}" for app, n in sorted(by_node[view.name].items()))
        cells = "".join(
            f"{_bar(reserved.on(axis), view.capacity.on(axis))} "
            f"{reserved.on(axis):>5}/{view.capacity.on(axis):<6}  "
            for axis in AXES
        )
        state = (ledger.get("status") or {}).get("state", "-")
        lines.append(
            f"{view.name:<14}{sum(by_node[view.name].values()):>5}  {siblings or '-':<20}"
            f"{cells}{state}"
        )
    return "\n".join(lines)


def _wait_for_pods(api: KubeApi, expected: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods, _ = api.list(PODS.path(namespace=NAMESPACE))
        if len(pods) >= expected and all(p["spec"].get("nodeName") for p in pods):
            return pods
        time.sleep(0.5)
    return pods


def _wait_for_ledgers(api: KubeApi, nodes: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items, _ = api.list(BANDWIDTHS.path())
        if {item["metadata"]["name"] for item in items} >= set(nodes):
            return True
        time.sleep(0.3)
    return False


def run(timeout: float) -> int:
    with ControlPlane() as cp:
        print(f"control plane ready at {cp.server} in {cp.startup_seconds:.1f}s")
        with cp.api_client() as client:
            install_crds(client)
        cp.start_controller_manager()
        nodes = _create_nodes(cp)
        print(
            f"{len(nodes)} simulated nodes: "
            + ", ".join(f"{count} with {mbps} Mbps NICs" for count, mbps in NODE_GROUPS)
        )
        api = KubeApi(load_client_configuration(str(cp.kubeconfig_path)))
        daemons = [
            _daemon("accounting", cp.kubeconfig_path, cp.work_dir),
            _daemon("scheduler", cp.kubeconfig_path, cp.work_dir),
        ]
        try:
            if not _wait_for_ledgers(api, nodes, 30):
                print("the accounting controller did not create the Bandwidth objects in 30s")
                return 1
            api.create(NAMESPACES.path(), {"metadata": {"name": NAMESPACE}})
            started = time.monotonic()
            expected = 0
            for resource, body in WORKLOADS:
                api.create(resource.path(namespace=NAMESPACE), body)
                expected += int(body["spec"]["replicas"])
                print(
                    f"created {body['kind']} {body['metadata']['name']}: "
                    f"{body['spec']['replicas']} replicas"
                )
            pods = _wait_for_pods(api, expected, timeout)
            elapsed = time.monotonic() - started
            time.sleep(2)  # let the accounting controller write the status of the last pods
            ledgers, _ = api.list(BANDWIDTHS.path())
            pods, _ = api.list(PODS.path(namespace=NAMESPACE))
            print()
            print(render_table(ledgers, pods))
            print()
            bound = [p for p in pods if p["spec"].get("nodeName")]
            oversubscribed = [
                item["metadata"]["name"]
                for item in ledgers
                if (item.get("status") or {}).get("state") == "Oversubscribed"
            ]
            print(
                f"{len(bound)}/{expected} pods bound in {elapsed:.1f}s; "
                f"{len(oversubscribed)} node(s) oversubscribed."
            )
            for pod in pods:
                if not pod["spec"].get("nodeName"):
                    conditions = pod.get("status", {}).get("conditions") or []
                    why = next((c.get("message") for c in conditions), "no decision yet")
                    print(f"  pending {pod['metadata']['name']}: {why}")
            print(f"daemon logs: {cp.work_dir}/scheduler.log, accounting.log (removed on exit)")
            return 0 if len(bound) == expected and not oversubscribed else 1
        except ApiError as error:
            print(f"demo failed: {error}", file=sys.stderr)
            return 1
        finally:
            for daemon in daemons:
                daemon.terminate()
            for daemon in daemons:
                try:
                    daemon.wait(10)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            api.close()
