"""``what-if`` of workloads that already run, and of several at once: no server."""

from __future__ import annotations

from typing import Any

from kubectl_bandwidth import render
from kubectl_bandwidth.whatif import read_workload, read_workloads, replica_pods, simulate
from tests.unit.kubectl_bandwidth.builders import (
    EGRESS,
    SCHEDULER,
    bandwidth,
    node,
    pod,
    snapshot,
    statefulset,
)

JSON = dict[str, Any]


def manifest(kind: str, name: str, replicas: int, egress: str = "100M") -> JSON:
    return {
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"annotations": {EGRESS: egress}},
                "spec": {"schedulerName": SCHEDULER, "containers": [{"name": "x"}]},
            },
        },
    }


def peers(index: int, node_name: str = "", egress: str = "100M") -> JSON:
    return pod(f"peers-{index}", node_name=node_name, egress=egress,
               owner=("StatefulSet", "peers"))  # fmt: skip


def test_what_if_of_a_running_statefulset_scales_it_and_continues_the_ordinals() -> None:
    # peers runs 4 pods on b (room for 10); a what-if must not move them or restart at 0.
    nodes = [node("a"), node("b")]
    ledgers = [bandwidth("a"), bandwidth("b")]
    running = [peers(i, "b") for i in range(4)]
    view = snapshot(nodes, ledgers, running, statefulsets=[statefulset("peers", 4)])
    result = simulate(view, read_workload(manifest("StatefulSet", "peers", 4),
                                          default_namespace="lab", replicas=9))  # fmt: skip
    assert result.existing.bound == ("peers-0", "peers-1", "peers-2", "peers-3")
    assert [p.pod for p in result.placements] == [f"peers-{i}" for i in range(4, 9)]
    # Existing siblings pull the new ones onto b, which has room for 6 more.
    assert result.placed == {"b": 5} and result.fits
    lines = render.render_what_if(result).splitlines()
    assert lines[:3] == [
        "StatefulSet lab/peers: 9 replica(s), each 100 Mbps up / 0 Mbps down.",
        "Running: 4 bound, 0 pending; simulated: 5 new replica(s).",
        "5/5 replica(s) would be placed: 5 on b.",
    ]
    document = render.what_if_document(result)
    assert document["existing"] == {"bound": [f"peers-{i}" for i in range(4)], "pending": [],
                                    "removed": 0}  # fmt: skip
    # Past b's room the rest spill to a, all of them together.
    more = simulate(
        snapshot(nodes, ledgers, running, statefulsets=[statefulset("peers", 4)]),
        read_workload(manifest("StatefulSet", "peers", 4), default_namespace="lab", replicas=16),
    )
    assert more.placed == {"b": 6, "a": 6}


def test_pending_pods_of_the_workload_are_placed_first_as_they_are() -> None:
    nodes = [node("a")]
    ledgers = [bandwidth("a", network=(1000, 1000))]
    running = [peers(0, "a"), peers(1, egress="700M"), peers(3)]  # peers-2 missing
    view = snapshot(nodes, ledgers, running, statefulsets=[statefulset("peers", 4)])
    result = simulate(view, read_workload(manifest("StatefulSet", "peers", 4),
                                          default_namespace="lab", replicas=5))  # fmt: skip
    assert [(p.pod, p.existing) for p in result.placements] == [
        ("peers-1", True), ("peers-3", True), ("peers-2", False), ("peers-4", False)
    ]  # fmt: skip
    # peers-1 asks 700 of the 900 left, then peers-3 and peers-2 100 each: none for peers-4.
    assert [p.node for p in result.placements] == ["a", "a", "a", None]
    assert result.placements[3].reason == "FailedScheduling"
    assert render.render_what_if(result).splitlines()[1] == (
        "Running: 1 bound, 2 pending; simulated: the 2 pending and 2 new replica(s)."
    )


def test_fewer_replicas_than_run_places_nothing() -> None:
    running = [peers(i, "a") for i in range(3)]
    view = snapshot([node("a")], [bandwidth("a")], running, [statefulset("peers", 3)])
    result = simulate(view, read_workload(manifest("StatefulSet", "peers", 3),
                                          default_namespace="lab", replicas=1))  # fmt: skip
    assert result.placements == () and result.existing.removed == 2
    assert render.render_what_if(result).splitlines()[1:] == [
        "Running: 3 bound, 0 pending; scaling to 1 removes 2 pod(s), nothing to place.",
        "Nothing to place.",
    ]


def test_a_running_deployment_gets_only_its_missing_replicas() -> None:
    hashed = {"pod-template-hash": "5c6d"}
    running = [
        pod(f"web-5c6d-{i}", node_name="a", egress="100M", owner=("ReplicaSet", "web-5c6d"),
            labels=hashed)
        for i in range(3)
    ]  # fmt: skip
    view = snapshot([node("a"), node("b")], [bandwidth("a"), bandwidth("b")], running)
    result = simulate(view, read_workload(manifest("Deployment", "web", 3),
                                          default_namespace="lab", replicas=5))  # fmt: skip
    assert len(result.existing.bound) == 3
    assert result.new == 2 and result.placed == {"a": 2}  # with their siblings
    untouched = simulate(
        snapshot([node("a"), node("b")], [bandwidth("a"), bandwidth("b")], running),
        read_workload(manifest("Deployment", "other", 2), default_namespace="lab", replicas=None),
    )
    assert untouched.existing.count == 0 and untouched.new == 2


def test_a_pod_that_exists_is_not_placed_again() -> None:
    bound = pod("solo", node_name="a", egress="100M")
    view = snapshot([node("a")], [bandwidth("a")], [bound])
    solo = {"kind": "Pod", "metadata": {"name": "solo"}, "spec": bound["spec"]}
    result = simulate(view, read_workload(solo, default_namespace="lab", replicas=None))
    assert result.existing.bound == ("solo",) and result.placements == ()


def test_several_workloads_are_simulated_together_in_file_order() -> None:
    view = snapshot([node("a")], [bandwidth("a", network=(1000, 1000))])
    workloads, skipped = read_workloads(
        [
            {"kind": "Service", "metadata": {"name": "peers"}},
            manifest("StatefulSet", "peers", 6),
            manifest("Deployment", "relays", 6),
        ],
        default_namespace="lab",
        replicas=None,
    )
    results = [simulate(view, workload) for workload in workloads]
    # The Deployment sees the StatefulSet's 600 Mbps taken: 4 of its 6 fit.
    assert [r.placed for r in results] == [{"a": 6}, {"a": 4}]
    lines = render.render_what_ifs(results, skipped, wide=False).splitlines()
    assert lines[0].startswith("StatefulSet lab/peers: 6 replica(s)")
    second = lines.index("Deployment lab/relays: 6 replica(s), each 100 Mbps up / 0 Mbps down.")
    assert (
        lines[second - 1] == "" and lines[second + 1] == "4/6 replica(s) would be placed: 4 on a."
    )
    text = "\n".join(lines)
    assert text.endswith("Skipped (not a Pod, Deployment or StatefulSet): Service/peers")
    document = render.what_ifs_document(results, skipped)
    assert [d["workload"]["name"] for d in document["items"]] == ["peers", "relays"]
    assert document["skipped"] == ["Service/peers"]
    assert "items" not in render.what_ifs_document(results[:1], [])


def test_invalid_and_unsupported_replicas_get_the_schedulers_refusal() -> None:
    view = snapshot([node("a")], [bandwidth("a")])
    bad = simulate(view, read_workload(manifest("StatefulSet", "bad", 2, egress="fast"),
                                       default_namespace="lab", replicas=None))  # fmt: skip
    assert {(p.node, p.reason) for p in bad.placements} == {(None, "InvalidBandwidthRequest")}
    assert render.render_what_if(bad).splitlines()[0] == (
        "StatefulSet lab/bad: 2 replica(s), each with an invalid bandwidth request."
    )
    assert render.what_if_document(bad)["request"]["invalid"].startswith("annotation ")


def test_statefulset_replicas_get_their_claims_as_the_controller_writes_them() -> None:
    stateful = manifest("StatefulSet", "db", 2)
    stateful["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "db"}},
    ]
    stateful["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {}}]
    workload = read_workload(stateful, default_namespace="lab", replicas=None)
    (scaled,), _ = read_workloads([stateful], default_namespace="lab", replicas=2)
    assert scaled == workload  # --replicas keeps the claim templates
    pods = replica_pods(workload)
    assert [p["spec"]["volumes"] for p in pods] == [
        [
            {"name": "config", "configMap": {"name": "db"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": f"data-db-{i}"}},
        ]
        for i in range(2)
    ]
