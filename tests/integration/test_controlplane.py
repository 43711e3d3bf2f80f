"""The local control plane itself: lifecycle, cleanup, simulated nodes, extra components."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from localcluster import ControlPlane, ProcessStartError, rawapi
from localcluster.controlplane import sweep_stale_work_dirs
from localcluster.kubeconfig import new_token_api_client
from localcluster.nodes import NOT_READY_TAINT_KEY, SIMULATED_LABEL, ZONE_LABEL
from localcluster.process import pid_alive, port_is_free

pytestmark = pytest.mark.controlplane


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a /proc scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def assert_gone(pids: list[int], ports: list[int], work_dir: Path, timeout: float = 0) -> None:
    """No component pid alive, no process using ``work_dir``, every port bindable.

    ``timeout`` allows for the kernel to finish tearing down processes that were not our
    children (killed by PR_SET_PDEATHSIG): their ports close a moment after they exit.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if pid_alive(p)]
        orphans = processes_mentioning(str(work_dir))
        bound = [p for p in ports if not port_is_free(p)]
        if not (alive or orphans or bound):
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"left behind: live pids {alive}, orphans {orphans}, bound ports {bound}")
        time.sleep(0.1)


def test_starts_and_stops_cleanly_twice() -> None:
    for _ in range(2):
        cp = ControlPlane()
        with cp:
            assert cp.startup_seconds is not None and cp.startup_seconds < 30
            pids = list(cp.pids().values())
            ports = list(cp.ports.values())
            work_dir = cp.work_dir
            assert len(pids) == 2 and all(pid_alive(p) for p in pids)
            with cp.api_client() as client:
                assert rawapi.request(client, "GET", "/readyz")[0] == 200
            assert cp.kubeconfig_path.is_file()
        cp.stop()  # idempotent
        assert_gone(pids, ports, work_dir)
        assert not work_dir.exists()


def test_kubeconfig_works_with_kubectl() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    with ControlPlane() as cp:
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(cp.kubeconfig_path), "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert out.stdout.strip() == "ok"


CHILD_SCRIPT = """
import json, sys, time
from localcluster import ControlPlane
cp = ControlPlane()
cp.start()
print(json.dumps({"pids": list(cp.pids().values()), "ports": list(cp.ports.values()),
                  "work_dir": str(cp.work_dir)}), flush=True)
time.sleep(600)
"""


def start_child(temp_root: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A process that starts a control plane with its work dir under ``temp_root``: private,
    so that no other control plane starting on the machine sweeps it first."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TMPDIR=str(temp_root)),
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, f"the child exited with {child.wait()} before starting a control plane"
    info: dict[str, Any] = json.loads(line)
    return child, info


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_components_die_with_an_interrupted_parent(sig: signal.Signals, tmp_path: Path) -> None:
    child, info = start_child(tmp_path)
    try:
        assert all(pid_alive(p) for p in info["pids"])
        child.send_signal(sig)
        child.wait(timeout=30)
        assert_gone(info["pids"], info["ports"], Path(info["work_dir"]), timeout=15)
        if sig == signal.SIGINT:  # atexit ran: the work dir is gone too
            assert not Path(info["work_dir"]).exists()
        else:  # nothing could clean up; the next control plane's start sweeps it
            assert Path(info["work_dir"]).exists()
            assert Path(info["work_dir"]) in sweep_stale_work_dirs(tmp_path)
    finally:
        child.kill()
        child.wait()
        if Path(info["work_dir"]).exists():
            subprocess.run(["rm", "-rf", info["work_dir"]], check=False)


def test_failed_start_reports_the_log_and_cleans_up() -> None:
    cp = ControlPlane(apiserver_args={"no-such-flag": "1"})
    with pytest.raises(ProcessStartError) as info:
        cp.start()
    message = str(info.value)
    assert "kube-apiserver exited" in message
    assert "no-such-flag" in message  # from the quoted log tail
    log_path = Path(message.split("log: ", 1)[1].split("\n", 1)[0])
    assert log_path.is_file()
    assert cp.pids() == {}
    assert processes_mentioning(str(log_path.parent)) == []
    subprocess.run(["rm", "-rf", str(log_path.parent)], check=True)


def test_simulated_nodes_are_ready(
    api_client: ApiClient, simulated_nodes: Callable[..., list[str]]
) -> None:
    started = time.monotonic()
    names = simulated_nodes(200, cpu="16", memory="64Gi", pods="250", labels={"rack": "r1"})
    elapsed = time.monotonic() - started
    assert len(set(names)) == 200
    prefix = names[0].rsplit("-", 1)[0]
    items = rawapi.request_ok(
        api_client, "GET", "/api/v1/nodes", query={"labelSelector": f"{SIMULATED_LABEL}=true"}
    )["items"]
    nodes = {n["metadata"]["name"]: n for n in items if n["metadata"]["name"].startswith(prefix)}
    assert sorted(nodes) == sorted(names)
    zones = set()
    for name, node in nodes.items():
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["rack"] == "r1"
        zones.add(labels[ZONE_LABEL])
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert [c["status"] for c in ready] == ["True"]
        allocatable = node["status"]["allocatable"]
        assert allocatable["cpu"] == "16"
        assert allocatable["memory"] == "64Gi"
        assert allocatable["pods"] == "250"
        assert "ephemeral-storage" in allocatable
        taints = node["spec"].get("taints") or []
        assert not [t for t in taints if t["key"] == NOT_READY_TAINT_KEY]
        assert {a["type"] for a in node["status"]["addresses"]} == {"InternalIP", "Hostname"}
    assert zones == {"zone-a", "zone-b", "zone-c"}
    assert elapsed < 30, f"200 nodes took {elapsed:.1f}s"


def test_simulated_node_taints_are_kept(
    api_client: ApiClient, simulated_nodes: Callable[..., list[str]]
) -> None:
    taint = {"key": "dedicated", "value": "bench", "effect": "NoSchedule"}
    [name] = simulated_nodes(1, taints=[taint], zones=())
    node = rawapi.request_ok(api_client, "GET", f"/api/v1/nodes/{name}")
    assert node["spec"]["taints"] == [taint]
    assert ZONE_LABEL not in node["metadata"]["labels"]


def test_service_account_tokens_and_rbac(
    controlplane: ControlPlane, api_client: ApiClient, namespace: str
) -> None:
    sa = "reader"
    rawapi.request_ok(
        api_client,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"metadata": {"name": sa}},
    )
    token = rawapi.request_ok(
        api_client,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    with new_token_api_client(controlplane.server, controlplane.pki.ca_cert, token) as client:
        status, body = rawapi.request(client, "GET", pods_path)
        assert status == 403, body
        assert f"system:serviceaccount:{namespace}:{sa}" in body["message"]
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        rawapi.request_ok(
            api_client,
            "POST",
            f"{rbac}/roles",
            body={
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
            },
        )
        rawapi.request_ok(
            api_client,
            "POST",
            f"{rbac}/rolebindings",
            body={
                "metadata": {"name": "pod-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pod-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
            },
        )
        wait_for(lambda: rawapi.request(client, "GET", pods_path)[0] == 200, 10, "RBAC grant")


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:0"}]},
            },
        },
    }


def list_pods(client: ApiClient, namespace: str, selector: str) -> list[dict[str, Any]]:
    reply = rawapi.request_ok(
        client, "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector}
    )
    return list(reply["items"])


def test_controller_manager_runs_workload_controllers(
    controller_manager: ControlPlane, api_client: ApiClient, namespace: str
) -> None:
    rawapi.request_ok(
        api_client,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        body=deployment("web", 3),
    )
    wait_for(lambda: len(list_pods(api_client, namespace, "app=web")) == 3, 30, "3 pods")
    log = controller_manager.log_path("kube-controller-manager").read_text()
    assert "node-lifecycle-controller" in log  # named as disabled, never started
    assert "Starting node lifecycle controller" not in log


@pytest.fixture(scope="module")
def private_controlplane() -> Iterator[ControlPlane]:
    """A control plane of its own, for tests that disrupt or add components."""
    with ControlPlane() as cp:
        yield cp


def test_restart_apiserver_keeps_data_and_port(private_controlplane: ControlPlane) -> None:
    cp = private_controlplane
    port, old_pid = cp.apiserver_port, cp.pids()["kube-apiserver"]
    name = f"cm-{uuid.uuid4().hex[:6]}"
    path = "/api/v1/namespaces/default/configmaps"
    with cp.api_client() as client:
        rawapi.request_ok(
            client, "POST", path, body={"metadata": {"name": name}, "data": {"k": "v"}}
        )
        seconds = cp.restart_apiserver()
        assert seconds < 30
        assert cp.apiserver_port == port
        assert cp.pids()["kube-apiserver"] != old_pid
        assert not pid_alive(old_pid)
        assert rawapi.request_ok(client, "GET", f"{path}/{name}")["data"] == {"k": "v"}


def configmap_with_history(client: ApiClient, updates: int = 3) -> tuple[str, str]:
    """A new ConfigMap in ``default`` updated ``updates`` times; returns (path, first RV)."""
    name = f"cm-{uuid.uuid4().hex[:6]}"
    collection = "/api/v1/namespaces/default/configmaps"
    created = rawapi.request_ok(client, "POST", collection, body={"metadata": {"name": name}})
    for i in range(updates):
        rawapi.request_ok(
            client,
            "PATCH",
            f"{collection}/{name}",
            body={"data": {"i": str(i)}},
            content_type=rawapi.MERGE_PATCH,
        )
    return collection, str(created["metadata"]["resourceVersion"])


def exact_list(client: ApiClient, collection: str, rv: str) -> tuple[int, Any]:
    query = {"resourceVersion": rv, "resourceVersionMatch": "Exact"}
    return rawapi.request(client, "GET", collection, query=query)


def test_compact_etcd_then_restart_expires_lists_and_watches(
    private_controlplane: ControlPlane,
) -> None:
    cp = private_controlplane
    with cp.api_client() as client:
        collection, old_rv = configmap_with_history(client)
        assert exact_list(client, collection, old_rv)[0] == 200
        assert cp.compact_etcd() > int(old_rv)
        cp.restart_apiserver()

        status, body = exact_list(client, collection, old_rv)
        assert status == 410, body
        assert body["reason"] == "Expired"

        query = {"resourceVersion": old_rv, "watch": "1", "timeoutSeconds": "2"}
        status, event = rawapi.request(client, "GET", collection, query=query)
        assert status == 200  # watch errors arrive as an ERROR event in the stream
        assert event["type"] == "ERROR", event
        assert event["object"]["code"] == 410


@pytest.mark.slow
def test_compact_etcd_expires_lists_without_restart(private_controlplane: ControlPlane) -> None:
    cp = private_controlplane
    with cp.api_client() as client:
        collection, old_rv = configmap_with_history(client)
        cp.compact_etcd()
        # The watch cache notices compact_rev_key within its 15 s poll period.
        wait_for(lambda: exact_list(client, collection, old_rv)[0] == 410, 40, "410 Gone")


def test_kube_scheduler_binds_pods(private_controlplane: ControlPlane) -> None:
    from localcluster import create_simulated_nodes

    cp = private_controlplane
    cp.start_kube_scheduler()
    with cp.api_client() as client:
        names = create_simulated_nodes(client, 3, name_prefix="sched")
        rawapi.request(
            client,
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            body={"metadata": {"name": "default"}},
        )
        pod = deployment("p", 1)["spec"]["template"]
        pod["metadata"]["name"] = "scheduled"
        rawapi.request_ok(client, "POST", "/api/v1/namespaces/default/pods", body=pod)

        def bound() -> bool:
            got = rawapi.request_ok(client, "GET", "/api/v1/namespaces/default/pods/scheduled")
            return got["spec"].get("nodeName") in names

        wait_for(bound, 30, "kube-scheduler to bind the pod")
