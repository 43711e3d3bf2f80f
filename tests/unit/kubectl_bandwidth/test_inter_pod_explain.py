"""``kubectl bandwidth explain`` names inter-pod and spread refusals as kube-scheduler does,
reading namespace labels from the snapshot: no server."""

from __future__ import annotations

from kubectl_bandwidth.diagnosis import explain_pod
from kubectl_bandwidth.snapshot import ClusterLists, build_snapshot
from tests.unit.kubectl_bandwidth.builders import CONFIG, bandwidth, node, pod

ZONE = "topology.kubernetes.io/zone"


def test_a_pending_pod_is_refused_in_kube_schedulers_words() -> None:
    nodes = [node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"}), node("c1")]
    db = pod("db", node_name="a1", namespace="data", labels={"app": "db"}, phase="Running")
    web = pod("web", labels={"app": "web"})
    web["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "db"}},
                    "namespaceSelector": {"matchLabels": {"tier": "data"}},
                    "topologyKey": ZONE,
                }
            ]
        }
    }
    web["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    lists = ClusterLists(
        nodes=nodes,
        bandwidths=[bandwidth(n["metadata"]["name"]) for n in nodes],
        pods=[db, web],
        namespaces=[{"metadata": {"name": "data", "labels": {"tier": "data"}}}],
    )
    explanation = explain_pod(build_snapshot(lists, CONFIG), web)
    verdicts = {v.node: v.reasons for v in explanation.verdicts}
    assert verdicts == {
        "a1": ("node(s) didn't match pod anti-affinity rules",),
        "b1": (),
        "c1": ("node(s) didn't match pod topology spread constraints (missing required label)",),
    }
    assert explanation.best == "b1"
    # Without the namespace's labels the selector reaches no namespace: a1 is free.
    unlabelled = ClusterLists(
        nodes=nodes, bandwidths=lists.bandwidths, pods=[db, web], namespaces=[]
    )
    assert {
        v.node for v in explain_pod(build_snapshot(unlabelled, CONFIG), web).verdicts if v.feasible
    } == {"a1", "b1"}
