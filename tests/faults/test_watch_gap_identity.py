"""Objects made again under the same name, and pods that finish, while a watch is away.

A watch that comes back after 410 Gone relists; what changed in the gap is learnt from the
difference between the cache and the list. Keyed by name alone, that difference hides an object
deleted and created again (a StatefulSet's ``web-0``, a node re-registered, a Bandwidth made
again): it looked like a MODIFIED of the old object, so the scheduler kept charging the old
``web-0`` and the new one waited for ever with "insufficient bandwidth" on an empty node. A pod
bound and finished within the gap arrives in one event, bound and terminal at once, and was
never un-assumed.

The first test checks the cache itself, for every kind both daemons watch: the relist reports
DELETED of the old UID and ADDED of the new one; a handler that raises is logged once with the
object's key and stops nothing. The second runs the daemons through the issue's scenario.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from structlog.testing import capture_logs

from kubeio.config import load_client_configuration
from kubeio.resources import (
    BANDWIDTHS,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    Resource,
)
from kubeio.rest import JSON, KubeApi
from kubeio.watchcache import WatchCache, object_key
from localcluster import create_simulated_nodes
from tests.faults.conftest import PrivateLab
from tests.faults.proxy import FaultProxy
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

Seen = list[tuple[str, str]]


def _workload(kind: str, name: str, namespace: str) -> JSON:
    labels = {"app": name}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }
    spec: JSON = {"replicas": 0, "selector": {"matchLabels": labels}, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _bandwidth(name: str, mbps: int) -> JSON:
    link = {"ulMbps": mbps, "dlMbps": mbps}
    return {
        "apiVersion": "networking.vaclab.org/v1",
        "kind": "Bandwidth",
        "metadata": {"name": name},
        "spec": {"capacity": {"local": link, "network": link}},
    }


def test_a_relist_reports_an_object_made_again_as_deleted_then_added(
    private_lab: PrivateLab,
) -> None:
    cp, lab = private_lab()
    ns = lab.namespace
    makers: dict[Resource, tuple[str, Callable[[int], None]]] = {
        NODES: (
            f"{lab.scope}-0000",
            lambda i: create_simulated_nodes(lab.api_client, 1, name_prefix=lab.scope),
        ),
        PODS: (f"{ns}/web-0", lambda i: lab.create_pod("web-0", egress=f"{i + 1}M")),
        BANDWIDTHS: (
            lab.scope,
            lambda i: lab.kube.create(BANDWIDTHS.path(), _bandwidth(lab.scope, 1000 * (i + 1))),
        ),
        REPLICASETS: (
            f"{ns}/rs",
            lambda i: lab.kube.create(
                REPLICASETS.path(namespace=ns), _workload("ReplicaSet", "rs", ns)
            ),
        ),
        STATEFULSETS: (
            f"{ns}/sts",
            lambda i: lab.kube.create(
                STATEFULSETS.path(namespace=ns), _workload("StatefulSet", "sts", ns)
            ),
        ),
    }
    seen: dict[str, Seen] = {}

    def record(kind: str, old: JSON | None, new: JSON | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        seen.setdefault(object_key(obj), []).append((kind, obj["metadata"]["uid"]))

    def refuse_bad_pods(kind: str, old: JSON | None, new: JSON | None) -> None:
        if object_key(new or old or {}).endswith("/bad"):
            raise RuntimeError("a handler bug")

    with FaultProxy(cp.credentials) as proxy, capture_logs() as logs:
        api = KubeApi(load_client_configuration(str(proxy.kubeconfig(lab.log_dir / "p.cfg"))))
        caches = {resource: WatchCache(api, resource) for resource in makers}
        caches[PODS].add_handler(refuse_bad_pods)
        for cache in caches.values():
            cache.add_handler(record)
            cache.start()
        try:
            for cache in caches.values():
                assert cache.wait_synced(30), cache.kind
            for _, make in makers.values():
                make(0)
            first = {
                key: wait_for(f"{key} seen", lambda key=key: seen.get(key), timeout=30)[-1][1]
                for key, _ in makers.values()
            }
            lab.create_pod("bad")
            lab.kube.patch(
                PODS.path(namespace=ns, name="bad"), {"metadata": {"labels": {"a": "b"}}}
            )
            lab.create_pod("after-bad")
            wait_for("the pod after the bad one", lambda: seen.get(f"{ns}/after-bad"))

            proxy.partition()
            wait_for("every watch broken", lambda: all(c.last_error for c in caches.values()))
            for resource, (key, make) in makers.items():
                namespace, _, name = key.rpartition("/")
                with contextlib.suppress(Exception):
                    lab.kube.request(
                        "DELETE",
                        resource.path(namespace=namespace or None, name=name),
                        body={"gracePeriodSeconds": 0},
                    )
                make(1)
            cp.compact_etcd()
            cp.restart_apiserver()
            proxy.heal()
            for cache in caches.values():
                wait_for(f"{cache.kind} relisted", lambda c=cache: c.relists >= 2, timeout=60)
        finally:
            for cache in caches.values():
                cache.stop()
            api.close()

    for key, _ in makers.values():
        events = seen[key]
        old_uid = first[key]
        new_uid = events[-1][1]
        assert new_uid != old_uid, (key, events)
        assert events[-2:] == [("DELETED", old_uid), ("ADDED", new_uid)], (key, events)
        assert ("MODIFIED", new_uid) not in events, (key, events)
    failures = [e for e in logs if e["event"] == "watch_handler_failed"]
    assert len(failures) == 1, failures  # ADDED and MODIFIED failed alike: one line
    assert failures[0]["key"] == f"{ns}/bad" and failures[0]["kind"] == "pods", failures
    assert not [e for e in logs if e["event"] == "watch_cache_failure"]
    print("relist of an object made again:", {k: seen[k][-2:] for k, _ in makers.values()})


def _pinned(lab: Lab, node: str, **labels: str) -> dict[str, Any]:
    return {"kubernetes.io/hostname": node, **labels}


def test_pods_made_again_or_finished_in_a_watch_gap_free_their_bandwidth(
    private_lab: PrivateLab,
) -> None:
    cp, lab = private_lab()
    with FaultProxy(cp.credentials) as proxy:
        accounting = lab.accounting("--unbound-reservation-grace=5s")
        web_node, job_node = lab.make_nodes(2, network_mbps=1000)
        wait_for("the Bandwidths", lambda: len(lab.bandwidths()) == 2)
        scheduler = lab.scheduler(kubeconfig=proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig"))
        scheduler.wait_synced()
        lab.create_pod("web-0", egress="600M", node_selector=_pinned(lab, web_node))
        lab.create_pod("job", egress="600M", node_selector=_pinned(lab, job_node, ready="yes"))
        wait_for("web-0 bound", lambda: lab.bound().get("web-0"))

        # The scheduler binds "job" but its pod watch is held: it never sees the binding.
        proxy.hold("/pods")
        lab.kube.patch(NODES.path(name=job_node), {"metadata": {"labels": {"ready": "yes"}}})
        wait_for("job bound", lambda: lab.bound().get("job"))
        lab.kube.patch(
            PODS.path(namespace=lab.namespace, name="job", subresource="status"),
            {"status": {"phase": "Succeeded"}},
        )
        proxy.partition()
        old_uid = lab.kube.get(PODS.path(namespace=lab.namespace, name="web-0"))["metadata"]["uid"]
        lab.delete_pod("web-0")
        lab.create_pod("web-0", egress="600M", node_selector=_pinned(lab, web_node))
        wait_for(
            "both reservations released",
            lambda: len(accounting.named("reservation_released")) >= 2,
            timeout=30,
        )
        cp.compact_etcd()
        cp.restart_apiserver()
        proxy.heal()
        wait_for("the scheduler's pods relisted", partial(scheduler.relisted_after_expiry, "pods"))
        lab.create_pod("next", egress="600M", node_selector=_pinned(lab, job_node))

        bound = wait_for(
            "the new web-0 and the next job bound",
            lambda: {"web-0", "next"} <= set(b := lab.bound()) and b,
            timeout=30,
        )
        result = lab.settled_audit()
        result.row("web-0 made again and a pod finished while the scheduler's watch was away")

        new_uid = lab.kube.get(PODS.path(namespace=lab.namespace, name="web-0"))["metadata"]["uid"]
        assert new_uid != old_uid
        assert bound["web-0"] == web_node and bound["next"] == job_node
        result.assert_clean()
        for daemon in (scheduler, accounting):
            assert daemon.alive(), daemon.tail()
            assert not daemon.tracebacks(), daemon.tail()
