"""NodePorts on a ClusterState fed watch events: kube-scheduler's conflict matrix
(node_ports_test.go), no server."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.plugins.node_ports import PORTS_TAKEN
from tests.unit.scheduler.cluster_builder import Cluster, pod_json


def port(number: int, protocol: str | None = None, ip: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containerPort": number, "hostPort": number}
    if protocol:
        spec["protocol"] = protocol
    if ip:
        spec["hostIP"] = ip
    return spec


@pytest.mark.parametrize(
    ("used", "wanted", "fits"),
    [
        (port(80), port(80), False),
        (port(80), port(8080), True),
        (port(80, "UDP"), port(80, "TCP"), True),
        (port(80, "UDP"), port(80, "UDP"), False),
        (port(80, "SCTP"), port(80, "SCTP"), False),
        (port(80, ip="127.0.0.1"), port(80, ip="127.0.0.2"), True),
        (port(80, ip="127.0.0.1"), port(80, ip="127.0.0.1"), False),
        (port(80, ip="127.0.0.1"), port(80), False),  # every address includes this one
        (port(80), port(80, ip="127.0.0.1"), False),
        (port(80, ip="0.0.0.0"), port(80, ip="10.0.0.1"), False),
        (port(80, "UDP", "127.0.0.1"), port(80, "TCP"), True),
    ],
)
def test_host_port_conflicts(used: dict[str, Any], wanted: dict[str, Any], fits: bool) -> None:
    cluster = Cluster().node("n1").pod("holder", "n1", ports=[used])
    body = pod_json("p", ports=[wanted])
    assert cluster.feasible(body) == ({"n1"} if fits else set())
    if not fits:
        assert cluster.reasons(body) == {PORTS_TAKEN: 1}


def test_sidecar_init_containers_hold_ports_and_plain_init_containers_do_not() -> None:
    sidecar = {"name": "s", "restartPolicy": "Always", "ports": [port(9000)]}
    once = {"name": "i", "ports": [port(9001)]}
    cluster = Cluster().node("n1").pod("holder", "n1", initContainers=[sidecar, once])
    assert cluster.feasible(pod_json("p", ports=[port(9000)])) == set()
    assert cluster.feasible(pod_json("p", ports=[port(9001)])) == {"n1"}
    wants_sidecar_port = pod_json("p", initContainers=[sidecar])
    assert cluster.feasible(wants_sidecar_port) == set()


def test_a_port_is_freed_when_its_pod_goes_and_held_while_it_is_only_assumed() -> None:
    cluster = Cluster().node("n1").node("n2")
    first = cluster.place(pod_json("a", ports=[port(80)]))
    second = cluster.place(pod_json("b", ports=[port(80)]))
    assert {first, second} == {"n1", "n2"}
    assert cluster.place(pod_json("c", ports=[port(80)])) is None
    held = next(iter(cluster.state.nodes["n1"].assumed))
    cluster.state.forget(held)
    assert cluster.feasible(pod_json("c", ports=[port(80)])) == {"n1"}


def test_two_pods_holding_the_same_port_free_it_only_when_both_are_gone() -> None:
    cluster = Cluster().node("n1").pod("x", "n1", ports=[port(80)]).pod("y", "n1", ports=[port(80)])
    info = cluster.state.nodes["n1"]
    uid = next(iter(info.pods))
    info.remove_pod(uid, None)
    assert cluster.feasible(pod_json("p", ports=[port(80)])) == set()


def test_a_pod_without_host_ports_skips_the_plugin() -> None:
    cluster = Cluster().node("n1").pod("holder", "n1", ports=[port(80)])
    ctx = cluster.context(pod_json("p", ports=[{"containerPort": 80}]))
    assert ctx.cycle == {}
    assert cluster.feasible(pod_json("p")) == {"n1"}
