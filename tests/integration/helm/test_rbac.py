"""The chart's RBAC is enough and no more.

Enough: both daemons run as processes with the args the chart renders and the tokens of the
chart's ServiceAccounts (TokenRequest API, as in a pod); a pod gets bound, its reservation
lands in the node's Bandwidth and the status follows, and not one API request was refused.

No more: every verb on every resource the daemons might plausibly touch is asked of the
apiserver (SubjectAccessReview) and compared with the list of what the code does, and a few
writes outside the roles are made for real and answered 403.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object
from kubeio.errors import Forbidden, NotFound
from kubeio.resources import BANDWIDTHS, LEASES, NODES, PODS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from tests.integration.helm.support import (
    DaemonProcess,
    Release,
    allowed,
    api_for,
    container_args,
    local_args,
    service_account_token,
    wait_for,
    write_token_kubeconfig,
)
from tests.integration.scheduler.volumes.storage import Storage

SCOPE_LABEL = "helm.test.vaclab.org/scope"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

JSON = dict[str, Any]
Grant = tuple[str, str, str]
"""(API group, resource, subresource)"""

SCHEDULER_NEEDS: dict[Grant, set[str]] = {
    ("", "pods", ""): {"get", "list", "watch", "delete"},  # delete: preemption's victims
    ("", "pods", "binding"): {"create"},
    ("", "pods", "status"): {"patch"},
    ("", "nodes", ""): {"list", "watch"},
    ("", "namespaces", ""): {"list", "watch"},
    ("apps", "replicasets", ""): {"list", "watch"},
    ("apps", "statefulsets", ""): {"list", "watch"},
    ("policy", "poddisruptionbudgets", ""): {"list", "watch"},
    ("networking.vaclab.org", "bandwidths", ""): {"get", "list", "watch", "patch"},
    ("", "persistentvolumes", ""): {"list", "watch", "patch"},
    ("", "persistentvolumeclaims", ""): {"list", "watch", "patch"},
    ("storage.k8s.io", "storageclasses", ""): {"list", "watch"},
    ("storage.k8s.io", "csinodes", ""): {"list", "watch"},
    ("storage.k8s.io", "csidrivers", ""): {"list", "watch"},
    ("storage.k8s.io", "csistoragecapacities", ""): {"list", "watch"},
    ("", "events", ""): {"create", "patch"},
}
ACCOUNTING_NEEDS: dict[Grant, set[str]] = {
    ("", "nodes", ""): {"get", "list", "watch"},
    ("", "pods", ""): {"get", "list", "watch", "patch"},  # patch: the fence (kubeio.fencing)
    ("apps", "replicasets", ""): {"list", "watch"},
    ("networking.vaclab.org", "bandwidths", ""): {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    },
    ("networking.vaclab.org", "bandwidths", "status"): {"patch"},
    ("", "events", ""): {"create", "patch"},
}
DRA_NEEDS: dict[Grant, set[str]] = {
    ("resource.k8s.io", "resourceclaims", ""): {"list", "watch"},
    ("resource.k8s.io", "resourceslices", ""): {"list", "watch"},
}
"""Both daemons' extra reads with ``dra.driver`` set; without it, none of them."""
NEVER_NEEDED: tuple[Grant, ...] = (
    ("", "nodes", "status"),
    ("", "pods", "eviction"),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "serviceaccounts", "token"),
    ("apps", "deployments", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
    ("coordination.k8s.io", "leases", ""),
)
CLUSTER_SCOPED = {
    "nodes",
    "persistentvolumes",
    "storageclasses",
    "csinodes",
    "csidrivers",
    "namespaces",
    "bandwidths",
    "customresourcedefinitions",
    "clusterrolebindings",
    "resourceslices",
}


@pytest.fixture
def installed(release: Release) -> Release:
    """The chart with no replicas (nothing runs in-cluster here) and accounting scoped to
    this test's nodes; leader election on, as by default."""
    scope = release.name
    release.install(
        {
            "schedulerName": f"vaclab-{scope}",
            "scheduler.replicas": 0,
            "accounting.replicas": 0,
            "accounting.managedNodeSelector": f"{SCOPE_LABEL}={scope}",
            "accounting.resyncPeriod": "2s",
        }
    )
    return release


@pytest.fixture
def sa_kubeconfig(
    kube: KubeApi, controlplane: ControlPlane, tmp_path: Path
) -> Callable[[str, str], Path]:
    def write(namespace: str, service_account: str) -> Path:
        token = service_account_token(kube, namespace, service_account)
        path = tmp_path / f"{service_account}.kubeconfig"
        return write_token_kubeconfig(path, controlplane.server, controlplane.pki.ca_cert, token)

    return write


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()


def _grants_of(kube: KubeApi, sa: tuple[str, str], namespace: str) -> dict[Grant, set[str]]:
    granted: dict[Grant, set[str]] = {}
    everything = {*SCHEDULER_NEEDS, *ACCOUNTING_NEEDS, *DRA_NEEDS, *NEVER_NEEDED}
    for group, resource, subresource in sorted(everything):
        verbs = {
            verb
            for verb in VERBS
            if allowed(
                kube,
                sa,
                verb,
                resource,
                group=group,
                subresource=subresource,
                namespace="" if resource in CLUSTER_SCOPED else namespace,
            )
        }
        if verbs:
            granted[(group, resource, subresource)] = verbs
    return granted


def test_service_accounts_hold_exactly_what_the_code_uses(
    installed: Release, kube: KubeApi
) -> None:
    for component, needs in (("scheduler", SCHEDULER_NEEDS), ("accounting", ACCOUNTING_NEEDS)):
        sa = (installed.namespace, installed.service_account(component))
        # Cluster-wide: pods and events of any namespace, not only the release's.
        assert _grants_of(kube, sa, "default") == needs, component
        # Leases: only in the release namespace, and only the daemon's own may be renewed.
        deployment = installed.deployment(component)
        [lease] = [
            arg.partition("=")[2]
            for arg in container_args(deployment)
            if arg.startswith("--leader-elect-resource-name=")
        ]
        group = "coordination.k8s.io"
        ns = installed.namespace
        assert allowed(kube, sa, "create", "leases", group=group, namespace=ns)
        for verb in ("get", "update"):
            assert allowed(kube, sa, verb, "leases", group=group, namespace=ns, name=lease)
            assert not allowed(kube, sa, verb, "leases", group=group, namespace=ns, name="other")
        for verb in ("create", "get", "update", "delete"):
            assert not allowed(kube, sa, verb, "leases", group=group, namespace="default")


def test_both_daemons_work_with_the_charts_service_accounts(
    installed: Release,
    kube: KubeApi,
    sa_kubeconfig: Callable[[str, str], Path],
    simulated_nodes: Callable[..., list[str]],
    daemons: list[DaemonProcess],
    tmp_path: Path,
) -> None:
    ns = installed.namespace
    for component, module in (("accounting", "accounting"), ("scheduler", "scheduler")):
        kubeconfig = sa_kubeconfig(ns, installed.service_account(component))
        args = local_args(container_args(installed.deployment(component)), kubeconfig)
        daemons.append(DaemonProcess(module, args, tmp_path / f"{component}.log"))
    accounting, scheduler = daemons

    [node] = simulated_nodes(1, labels={SCOPE_LABEL: installed.name})
    try:
        wait_for(
            "the accounting controller to create the node's Bandwidth", lambda: _get(kube, node)
        )
        pod = kube.create(
            PODS.path(namespace=ns),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "peer",
                    "annotations": {"kubernetes.io/egress-bandwidth": "100M"},
                },
                "spec": {
                    "schedulerName": f"vaclab-{installed.name}",
                    "nodeSelector": {SCOPE_LABEL: installed.name},
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        )

        def bound() -> str | None:
            spec = kube.get(PODS.path(namespace=ns, name="peer"))["spec"]
            return str(spec["nodeName"]) if spec.get("nodeName") else None

        assert wait_for("the pod to be bound", bound, timeout=30) == node, scheduler.tail()
        bandwidth = kube.get(BANDWIDTHS.path(name=node))
        [reservation] = bandwidth["spec"]["reservations"]
        assert reservation["podUID"] == pod["metadata"]["uid"]

        def used_uplink() -> int | None:
            status = kube.get(BANDWIDTHS.path(name=node)).get("status") or {}
            return int((status.get("used") or {}).get("network", {}).get("ulMbps", 0)) or None

        assert wait_for("the status to count the pod", used_uplink, timeout=20) == 100
        # Both led through their own Lease in the release namespace.
        for lease in (f"vaclab-{installed.name}", f"{installed.fullname}-accounting"):
            assert kube.get(LEASES.path(namespace=ns, name=lease))["spec"]["holderIdentity"]
        for daemon in daemons:
            refused = [line for line in daemon.metrics().splitlines() if 'code="403"' in line]
            assert refused == [], f"{daemon.module}: {refused}\n{daemon.tail()}"
            # Leader election goes through the official client: a refusal shows in the log.
            assert not [e for e in daemon.events() if "forbidden" in str(e).lower()]
    finally:
        for daemon in daemons:
            daemon.stop()
        with contextlib.suppress(NotFound):
            kube.delete(BANDWIDTHS.path(name=node))
    assert accounting.process.returncode == 0, accounting.tail()
    assert scheduler.process.returncode == 0, scheduler.tail()


def test_dra_sharing_adds_the_claim_and_slice_reads_and_they_are_enough(
    release: Release,
    kube: KubeApi,
    sa_kubeconfig: Callable[[str, str], Path],
    daemons: list[DaemonProcess],
    tmp_path: Path,
) -> None:
    release.install(
        {
            "schedulerName": f"vaclab-{release.name}",
            "scheduler.replicas": 0,
            "accounting.replicas": 0,
            "accounting.managedNodeSelector": f"{SCOPE_LABEL}={release.name}",
            "dra.driver": "bandwidth.dra.vaclab.org",
        }
    )
    ns = release.namespace
    for component, needs in (("scheduler", SCHEDULER_NEEDS), ("accounting", ACCOUNTING_NEEDS)):
        sa = (ns, release.service_account(component))
        assert _grants_of(kube, sa, "default") == needs | DRA_NEEDS, component
        kubeconfig = sa_kubeconfig(ns, release.service_account(component))
        args = local_args(container_args(release.deployment(component)), kubeconfig)
        assert "--dra-driver=bandwidth.dra.vaclab.org" in args
        daemons.append(DaemonProcess(component, args, tmp_path / f"{component}.log"))
    for daemon in daemons:
        # Every cache, the claims' and the slices' too, has listed and watches.
        wait_for(
            f"{daemon.module}'s caches to sync",
            lambda daemon=daemon: any(e.get("event") == "caches_synced" for e in daemon.events()),
            timeout=30,
        )
        refused = [line for line in daemon.metrics().splitlines() if 'code="403"' in line]
        assert refused == [], f"{daemon.module}: {refused}\n{daemon.tail()}"


def test_the_scheduler_binds_volumes_with_the_charts_service_account(
    installed: Release,
    kube: KubeApi,
    controller_manager: ControlPlane,
    sa_kubeconfig: Callable[[str, str], Path],
    simulated_nodes: Callable[..., list[str]],
    daemons: list[DaemonProcess],
    tmp_path: Path,
) -> None:
    """The volume verbs are enough: a claim bound to a local volume (claimRef written) and one
    provisioned (selected-node written), the pod bound, and not one request refused."""
    ns = installed.namespace
    kubeconfig = sa_kubeconfig(ns, installed.service_account("scheduler"))
    args = local_args(container_args(installed.deployment("scheduler")), kubeconfig)
    daemons.append(DaemonProcess("scheduler", args, tmp_path / "scheduler.log"))
    [scheduler] = daemons
    [node] = simulated_nodes(1, labels={SCOPE_LABEL: installed.name})
    storage = Storage(kube, ns)
    try:
        local = storage.storage_class()
        storage.volume("disk", local, node=node)
        storage.claim("local", local)
        csi = storage.storage_class("csi", provisioner="csi.vaclab.test")
        storage.provisioner(csi, "csi.vaclab.test").start()
        storage.claim("provisioned", csi)
        kube.create(
            PODS.path(namespace=ns),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "db"},
                "spec": {
                    "schedulerName": f"vaclab-{installed.name}",
                    "nodeSelector": {SCOPE_LABEL: installed.name},
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    "volumes": [
                        {"name": v, "persistentVolumeClaim": {"claimName": v}}
                        for v in ("local", "provisioned")
                    ],
                },
            },
        )

        def bound() -> str | None:
            spec = kube.get(PODS.path(namespace=ns, name="db"))["spec"]
            return str(spec["nodeName"]) if spec.get("nodeName") else None

        assert wait_for("the pod to be bound", bound, timeout=90) == node, scheduler.tail()
        for claim in ("local", "provisioned"):
            bound_claim = storage.get_claim(claim)
            assert "pv.kubernetes.io/bind-completed" in bound_claim["metadata"]["annotations"]
        refused = [line for line in scheduler.metrics().splitlines() if 'code="403"' in line]
        assert refused == [], f"{refused}\n{scheduler.tail()}"
    finally:
        scheduler.stop()
        storage.cleanup()
    assert scheduler.process.returncode == 0, scheduler.tail()


def test_the_scheduler_preempts_with_the_charts_service_account(
    installed: Release,
    kube: KubeApi,
    sa_kubeconfig: Callable[[str, str], Path],
    simulated_nodes: Callable[..., list[str]],
    daemons: list[DaemonProcess],
    tmp_path: Path,
) -> None:
    """The preemption verbs are enough: the victim's condition and delete, the preemptor's
    nomination, the budgets' watch; and not one request refused."""
    ns = installed.namespace
    kubeconfig = sa_kubeconfig(ns, installed.service_account("scheduler"))
    args = local_args(container_args(installed.deployment("scheduler")), kubeconfig)
    daemons.append(DaemonProcess("scheduler", args, tmp_path / "scheduler.log"))
    [scheduler] = daemons
    [node] = simulated_nodes(1, labels={SCOPE_LABEL: installed.name})
    capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
    kube.create(BANDWIDTHS.path(), new_bandwidth_object(node, capacity))
    urgent_class = f"{installed.name}-urgent"
    kube.create(
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": urgent_class},
            "value": 1000,
        },
    )

    def pod(name: str, **spec: object) -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": {"kubernetes.io/egress-bandwidth": "800M"}},
            "spec": {
                "nodeSelector": {SCOPE_LABEL: installed.name},
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                **spec,
            },
        }

    try:
        kube.create(PODS.path(namespace=ns), pod("background", nodeName=node))
        kube.create(
            PODS.path(namespace=ns),
            pod(
                "urgent",
                schedulerName=f"vaclab-{installed.name}",
                priorityClassName=urgent_class,
            ),
        )

        def preempted() -> bool:
            victim = kube.get(PODS.path(namespace=ns, name="background"))
            urgent = kube.get(PODS.path(namespace=ns, name="urgent"))
            return bool(victim["metadata"].get("deletionTimestamp")) and (
                (urgent.get("status") or {}).get("nominatedNodeName") == node
            )

        assert wait_for("the preemption", preempted, timeout=30), scheduler.tail()
        refused = [line for line in scheduler.metrics().splitlines() if 'code="403"' in line]
        assert refused == [], f"{refused}\n{scheduler.tail()}"
    finally:
        scheduler.stop()
        with contextlib.suppress(NotFound):
            kube.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{urgent_class}")
        with contextlib.suppress(NotFound):
            kube.delete(BANDWIDTHS.path(name=node))
    assert scheduler.process.returncode == 0, scheduler.tail()


def _get(kube: KubeApi, node: str) -> dict[str, object] | None:
    try:
        return kube.get(BANDWIDTHS.path(name=node))
    except NotFound:
        return None


def test_writes_outside_the_roles_are_refused(
    installed: Release, kube: KubeApi, sa_kubeconfig: Callable[[str, str], Path]
) -> None:
    ns = installed.namespace
    node = f"{installed.name}-node"
    capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
    kube.create(BANDWIDTHS.path(), new_bandwidth_object(node, capacity))
    people = _bind_user_roles(kube, installed)
    as_scheduler = api_for(sa_kubeconfig(ns, installed.service_account("scheduler")))
    as_accounting = api_for(sa_kubeconfig(ns, installed.service_account("accounting")))
    as_viewer = api_for(sa_kubeconfig(ns, "viewer"))
    as_editor = api_for(sa_kubeconfig(ns, "editor"))
    node_body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{node}-x"}}
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    path = BANDWIDTHS.path(name=node)
    capacity_patch = {"spec": {"capacity": {"network": {"ulMbps": 5}}}}
    try:
        refused: list[tuple[str, Callable[[], object]]] = [
            ("scheduler deletes a Bandwidth", lambda: as_scheduler.delete(path)),
            ("scheduler creates a Bandwidth", lambda: as_scheduler.create(BANDWIDTHS.path(), {})),
            ("scheduler creates a Node", lambda: as_scheduler.create(NODES.path(), node_body)),
            (
                "scheduler writes a Bandwidth status",
                lambda: as_scheduler.patch(BANDWIDTHS.path(name=node, subresource="status"), {}),
            ),
            (
                "accounting binds a pod",
                lambda: as_accounting.create(
                    PODS.path(namespace=ns, name="p", subresource="binding"), binding
                ),
            ),
            ("accounting deletes a Node", lambda: as_accounting.delete(NODES.path(name=node))),
            ("viewer patches a Bandwidth", lambda: as_viewer.patch(path, capacity_patch)),
            ("viewer deletes a Bandwidth", lambda: as_viewer.delete(path)),
            (
                "editor writes a Bandwidth status",
                lambda: as_editor.patch(BANDWIDTHS.path(name=node, subresource="status"), {}),
            ),
        ]
        for what, write in refused:
            with pytest.raises(Forbidden):
                write()
                pytest.fail(f"{what}: not refused")
        # What the roles are for still works.
        assert as_viewer.get(path)["metadata"]["name"] == node
        patched = as_editor.patch(path, capacity_patch)
        assert patched["spec"]["capacity"]["network"]["ulMbps"] == 5
    finally:
        for api in (as_scheduler, as_accounting, as_viewer, as_editor):
            api.close()
        for binding_name in people:
            with contextlib.suppress(NotFound):
                kube.delete(
                    f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding_name}"
                )
        with contextlib.suppress(NotFound):
            kube.delete(path)


def _bind_user_roles(kube: KubeApi, installed: Release) -> list[str]:
    """ServiceAccounts ``viewer`` and ``editor`` bound to the chart's user ClusterRoles."""
    names = []
    for role in ("viewer", "editor"):
        kube.create(
            f"/api/v1/namespaces/{installed.namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": role}},
        )
        name = f"{installed.fullname}-{role}-{uuid.uuid4().hex[:4]}"
        kube.create(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": f"{installed.fullname}-{role}",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": role, "namespace": installed.namespace}
                ],
            },
        )
        names.append(name)
    return names
