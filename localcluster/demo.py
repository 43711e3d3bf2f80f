"""``make demo``: the whole project on a laptop, end to end, in about a minute.

A local control plane with kube-controller-manager, twelve simulated nodes of mixed NICs in
three zones, our accounting controller and scheduler as real processes, a StatefulSet of peers,
a Deployment of relays, a Deployment of gateways kept one per zone by required pod
anti-affinity, and a StatefulSet whose ``volumeClaimTemplates`` ask for local disks found on a
few nodes only (the PV controller binds each claim to the disk the scheduler chose), all asking
for bandwidth, the peers at a low priority; then an urgent run of higher priority that no node
has room for, which preempts a few peers; then one table per node of what was placed and
reserved, where the gateways went, where the claims were bound and what the urgent run
preempted.
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
from kubeio.resources import (
    BANDWIDTHS,
    DEPLOYMENTS,
    EVENTS,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STATEFULSETS,
    STORAGECLASSES,
)
from kubeio.rest import KubeApi
from localcluster.controlplane import ControlPlane
from localcluster.crds import install_crds
from localcluster.nodes import HOSTNAME_LABEL, ZONE_LABEL, create_simulated_nodes

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


def _one_per_zone(body: dict[str, Any]) -> dict[str, Any]:
    """Required pod anti-affinity on the zone: no two replicas in one zone."""
    app = body["metadata"]["name"]
    body["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": ZONE_LABEL}
            ]
        }
    }
    return body


LOCAL_DISKS = "local-disks"
DISK_NODE_PREFIXES = ("lab-025", "lab-100")  # local disks on the 2.5 and 10 Gbps nodes only


def _with_local_disk(statefulset: dict[str, Any]) -> dict[str, Any]:
    """Each replica claims a disk of ``LOCAL_DISKS``: WaitForFirstConsumer local volumes."""
    spec = statefulset["spec"]
    [container] = spec["template"]["spec"]["containers"]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    spec["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": LOCAL_DISKS,
                "resources": {"requests": {"storage": "50Gi"}},
            },
        }
    ]
    return statefulset


PRIORITY_CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"
BACKGROUND_CLASS = "vaclab-demo-background"
URGENT_CLASS = "vaclab-demo-urgent"
URGENT = "urgent-run"
PRIORITIES = {
    BACKGROUND_CLASS: (-10, "make demo: background experiments, first to be preempted"),
    URGENT_CLASS: (1000, "make demo: an urgent run that may preempt the background"),
}


def _background(body: dict[str, Any]) -> dict[str, Any]:
    """Long experiments that give way: the urgent run preempts them before anything else."""
    body["spec"]["template"]["spec"]["priorityClassName"] = BACKGROUND_CLASS
    return body


SPREAD_BY_ZONE = "gateways"
PEERS = "libp2p-peers"
WORKLOADS = (
    (STATEFULSETS, _background(_workload("StatefulSet", PEERS, 24, "200M", "200M"))),
    (DEPLOYMENTS, _workload("Deployment", "relays", 8, "1G", "500M")),
    (DEPLOYMENTS, _one_per_zone(_workload("Deployment", SPREAD_BY_ZONE, 3, "300M", "300M"))),
    (STATEFULSETS, _with_local_disk(_workload("StatefulSet", "kv-store", 4, "500M", "500M"))),
)


def _urgent_request(
    ledgers: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> tuple[str, int] | None:
    """The node holding the most peers, and an uplink need that only preempting up to two of
    them there can meet: the urgent run is pinned to that node (it measures the peers where they
    are), so the demo preempts whatever the placement turned out to be."""
    peers_up: Counter[str] = Counter()
    for pod in pods:
        if pod["metadata"]["labels"].get("app") == PEERS and pod["spec"].get("nodeName"):
            peers_up[pod["spec"]["nodeName"]] += 200
    views = {v.name: v for v in (parse_bandwidth(ledger) for ledger in ledgers)}
    crowded = sorted((node for node in peers_up if node in views), key=lambda n: (-peers_up[n], n))
    if not crowded:
        return None
    node = crowded[0]
    view = views[node]
    free = view.capacity.network.ul_mbps - view.reserved().network.ul_mbps
    return node, free + min(400, peers_up[node])


def _preempt_once(api: KubeApi, target: str, need: int, timeout: float) -> str:
    """An urgent run of priority 1000, pinned to ``target``, asking for ``need`` Mbps up: the
    scheduler preempts lower-priority pods there for it. Simulated nodes have no kubelet: the
    demo finishes the victims' graceful deletion, as one would. Returns the summary line."""
    started = time.monotonic()
    api.create(
        PODS.path(namespace=NAMESPACE),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": URGENT,
                "labels": {"app": URGENT},
                "annotations": {
                    "kubernetes.io/egress-bandwidth": f"{need}M",
                    "kubernetes.io/ingress-bandwidth": "100M",
                },
            },
            "spec": {
                "schedulerName": SCHEDULER_NAME,
                "priorityClassName": URGENT_CLASS,
                "nodeSelector": {HOSTNAME_LABEL: target},
                "containers": [{"name": "run", "image": "ghcr.io/vacp2p/nim-libp2p:demo"}],
            },
        },
    )
    deadline = time.monotonic() + timeout
    victims: set[str] = set()
    node = ""
    while time.monotonic() < deadline:
        urgent = api.get(PODS.path(namespace=NAMESPACE, name=URGENT))
        node = urgent["spec"].get("nodeName") or ""
        if node:
            break
        pods, _ = api.list(PODS.path(namespace=NAMESPACE))
        for pod in pods:  # the kubelet's part: containers stopped, the object goes
            if pod["metadata"].get("deletionTimestamp"):
                victims.add(pod["metadata"]["name"])
                api.request(
                    "DELETE",
                    PODS.path(namespace=NAMESPACE, name=pod["metadata"]["name"]),
                    body={"gracePeriodSeconds": 0},
                )
        time.sleep(0.3)
    if not node:
        return f"preemption: {URGENT} was not bound in {timeout:.0f}s"
    events, _ = api.list(EVENTS.path(namespace=NAMESPACE))
    preempted = sorted(
        {e["involvedObject"]["name"] for e in events if e.get("reason") == "Preempted"} | victims
    )
    return (
        f"preemption: {URGENT} (priority {PRIORITIES[URGENT_CLASS][0]}, {need} Mbps up) preempted "
        f"{len(preempted)} pod(s) of lower priority on {node}: {', '.join(preempted)}; "
        f"bound there in {time.monotonic() - started:.1f}s"
    )


def _create_priority_classes(api: KubeApi) -> None:
    for name, (value, description) in PRIORITIES.items():
        api.create(
            PRIORITY_CLASSES,
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": description,
            },
        )


def _create_local_disks(api: KubeApi, nodes: list[str]) -> list[str]:
    """A no-provisioner WaitForFirstConsumer class and one 100Gi local volume per disk node."""
    api.create(
        STORAGECLASSES.path(),
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": LOCAL_DISKS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    disk_nodes = [n for n in nodes if n.startswith(DISK_NODE_PREFIXES)]
    for node in disk_nodes:
        term = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
        api.create(
            PERSISTENTVOLUMES.path(),
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"disk-{node}"},
                "spec": {
                    "capacity": {"storage": "100Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": LOCAL_DISKS,
                    "local": {"path": "/mnt/disks/ssd0"},
                    "nodeAffinity": {
                        "required": {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
                    },
                },
            },
        )
    return disk_nodes


def _claims_on_their_nodes(api: KubeApi, pods: list[dict[str, Any]]) -> tuple[int, int]:
    """(claims bound to the local disk of their pod's node, pods with a claim)."""
    claims, _ = api.list(PERSISTENTVOLUMECLAIMS.path(namespace=NAMESPACE))
    volume_of = {c["metadata"]["name"]: c["spec"].get("volumeName") for c in claims}
    with_claims = on_node = 0
    for pod in pods:
        for volume in pod["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                with_claims += 1
                on_node += volume_of.get(claim) == f"disk-{pod['spec'].get('nodeName')}"
    return on_node, with_claims


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
    siblings_of = {
        node: ", ".join(f"{app} x{n}" for app, n in sorted(apps.items()))
        for node, apps in by_node.items()
    }
    width = max([20, *(len(text) + 2 for text in siblings_of.values())])
    header = (
        f"{'NODE':<14}{'PODS':>5}  {'SIBLINGS':<{width}}"
        + "".join(f"{_short(axis):<22}" for axis in AXES)
        + "STATE"
    )
    lines = [header, "-" * len(header)]
    for ledger in sorted(ledgers, key=lambda item: item["metadata"]["name"]):
        view = parse_bandwidth(ledger)
        reserved = view.reserved()
        siblings = siblings_of.get(view.name, "")
        cells = "".join(
            f"{_bar(reserved.on(axis), view.capacity.on(axis))} "
            f"{reserved.on(axis):>5}/{view.capacity.on(axis):<6}  "
            for axis in AXES
        )
        state = (ledger.get("status") or {}).get("state", "-")
        lines.append(
            f"{view.name:<14}{sum(by_node[view.name].values()):>5}  {siblings or '-':<{width}}"
            f"{cells}{state}"
        )
    return "\n".join(lines)


def zones_line(app: str, pods: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> str:
    """``gateways, one per zone: zone-a lab-010-0000, zone-b ...``"""
    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE_LABEL, "-") for n in nodes}
    placed = sorted(
        (zone_of.get(p["spec"]["nodeName"], "-"), p["spec"]["nodeName"])
        for p in pods
        if p["metadata"]["labels"].get("app") == app and p["spec"].get("nodeName")
    )
    return f"{app}, one per zone: " + ", ".join(f"{zone} {node}" for zone, node in placed)


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
            _create_priority_classes(api)
            disk_nodes = _create_local_disks(api, nodes)
            print(
                f"{len(disk_nodes)} local disks of class {LOCAL_DISKS}, one per node on: "
                + ", ".join(disk_nodes)
            )
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
            urgent = _urgent_request(ledgers, pods)
            preemption = "preemption: no peer was bound, so no urgent run was tried"
            if urgent is not None:
                preemption = _preempt_once(api, *urgent, timeout)
                expected += 1
                # The preempted peers come back through their StatefulSet and are placed.
                _wait_for_pods(api, expected, timeout)
                time.sleep(2)
                ledgers, _ = api.list(BANDWIDTHS.path())
            pods, _ = api.list(PODS.path(namespace=NAMESPACE))
            print()
            print(render_table(ledgers, pods))
            print()
            print(zones_line(SPREAD_BY_ZONE, pods, api.list(NODES.path())[0]))
            print(preemption)
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
            on_node, with_claims = _claims_on_their_nodes(api, bound)
            print(f"{on_node}/{with_claims} claims bound to the local disk of their pod's node.")
            for pod in pods:
                if not pod["spec"].get("nodeName"):
                    conditions = pod.get("status", {}).get("conditions") or []
                    why = next((c.get("message") for c in conditions), "no decision yet")
                    print(f"  pending {pod['metadata']['name']}: {why}")
            print(f"daemon logs: {cp.work_dir}/scheduler.log, accounting.log (removed on exit)")
            urgent_bound = any(p["metadata"]["name"] == URGENT for p in bound)
            placed = len(bound) == expected and on_node == with_claims and urgent_bound
            return 0 if placed and not oversubscribed else 1
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
