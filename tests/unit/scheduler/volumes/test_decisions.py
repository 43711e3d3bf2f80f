"""Volume scheduling decided on a ``ClusterState`` fed as the watch caches feed it: the
reasons, worded as kube-scheduler words them, and the volumes assumed between decisions."""

from __future__ import annotations

from scheduler.explain import unschedulable_message
from scheduler.metrics import unschedulable_labels
from scheduler.plugins.node_volume_limits import MAX_VOLUME_COUNT
from scheduler.plugins.volume_restrictions import READ_WRITE_ONCE_POD_CONFLICT
from scheduler.plugins.volume_zone import ZONE_CONFLICT
from scheduler.podfacts import read_pod
from scheduler.verdict import judge
from scheduler.volumes.claims import BIND_CONFLICT, NODE_CONFLICT, PV_NOT_EXIST, volumes_of
from tests.unit.scheduler.volumes.builders import (
    Cluster,
    csinode,
    pod,
    pv,
    pvc,
    storage_class,
)

NODES = ["n1", "n2", "n3"]


def message(cluster: Cluster, body: dict[str, object]) -> str:
    decision, _ = cluster.decide(body)
    assert decision.node is None
    rejection = decision.rejection.reason if decision.rejection else ""
    return unschedulable_message(decision.nodes_considered, decision.reasons, rejection)


def test_a_pod_without_claims_is_untouched() -> None:
    cluster = Cluster(NODES)
    decision, ctx = cluster.decide(pod("plain"))
    assert volumes_of(ctx) is None and decision.node is not None


def test_the_node_with_a_matching_local_volume_is_chosen_and_the_volume_assumed() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pv("pv-2", node="n2"), pvc("data"))
    decision, _ = cluster.decide(pod("web-0", claims=("data",)))
    assert decision.node == "n2"
    plan = cluster.state.volumes.plan_of("uid-web-0")
    assert plan is not None and plan.node == "n2"
    [(claim, volume)] = plan.bindings
    assert (claim.name, volume.name, volume.claim_ref) == ("data", "pv-2", volume.claim_ref)
    assert volume.claim_ref is not None and volume.claim_ref.uid == "uid-data"
    # The next pod sees the volume taken, before anything is written.
    cluster.add(pvc("data-1"))
    assert message(cluster, pod("web-1", claims=("data-1",))) == (
        f"0/3 nodes are available: 3 {BIND_CONFLICT}."
    )


def test_a_forgotten_decision_gives_the_volume_back() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pv("pv-2", node="n2"), pvc("a"), pvc("b"))
    assert cluster.decide(pod("p", claims=("a",)))[0].node == "n2"
    cluster.state.forget("uid-p")
    assert cluster.state.volumes.plan_of("uid-p") is None
    assert cluster.decide(pod("q", claims=("b",)))[0].node == "n2"


def test_two_claims_of_one_pod_never_get_the_same_volume() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pv("one", node="n1"), pv("two", node="n2"), pv("three", node="n2"))
    cluster.add(pvc("a", "5Gi"), pvc("b", "1Gi"))
    decision, _ = cluster.decide(pod("p", claims=("a", "b")))
    assert decision.node == "n2"
    plan = cluster.state.volumes.plan_of("uid-p")
    assert plan is not None
    assert sorted(volume.name for _, volume in plan.bindings) == ["three", "two"]


def test_a_watch_event_newer_than_the_assumed_volume_replaces_it() -> None:
    cluster = Cluster(NODES)
    volume = pv("pv-2", node="n2")
    cluster.add(storage_class(), volume, pvc("data"))
    cluster.decide(pod("web-0", claims=("data",)))
    assumed = cluster.state.volumes.volume("pv-2")
    assert assumed is not None and assumed.claim_ref is not None
    cluster.update(volume)  # newer, and still without a claimRef: the apiserver's word wins
    current = cluster.state.volumes.volume("pv-2")
    assert current is not None and current.claim_ref is None


def test_bound_claims_follow_their_volume_node_affinity() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pv("pv-3", node="n3", phase="Bound", claim=("ns", "data")))
    cluster.add(pvc("data", volume="pv-3", bound=True))
    decision, _ = cluster.decide(pod("p", claims=("data",)))
    assert decision.node == "n3"
    assert decision.reasons == {NODE_CONFLICT: 2}
    assert cluster.state.volumes.plan_of("uid-p") is None  # nothing to bind


def test_claims_that_keep_every_node_out_are_said_once_as_kube_scheduler_says_them() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), storage_class("fast", mode="Immediate"))
    cluster.add(pvc("immediate", storage_class="fast"), pvc("no-class", storage_class=""))
    cluster.add(pvc("gone", phase="Lost", volume="pv-x"), pvc("leaving", deleting=True))
    cluster.add(pvc("bound", volume="pv-missing", bound=True))
    cluster.add(pvc("prebound", volume="pv-y"), pvc("other-class", storage_class="nope"))
    cluster.add(pvc("p-scratch", owner_uid="someone-else"))
    expected = {
        ("missing",): 'persistentvolumeclaim "missing" not found',
        ("immediate",): "pod has unbound immediate PersistentVolumeClaims",
        ("no-class",): "pod has unbound immediate PersistentVolumeClaims",
        ("other-class",): "pod has unbound immediate PersistentVolumeClaims",
        ("prebound",): "pod has unbound immediate PersistentVolumeClaims",
        ("gone",): 'persistentvolumeclaim "gone" bound to non-existent persistentvolume "pv-x"',
        ("leaving",): 'persistentvolumeclaim "leaving" is being deleted',
        ("bound",): 'persistentvolume "pv-missing" not found',
        ("immediate", "missing"): 'persistentvolumeclaim "missing" not found',
    }
    for claims, reason in expected.items():
        assert message(cluster, pod("p", claims=claims)) == f"0/3 nodes are available: {reason}."
    assert message(cluster, pod("p", ephemeral=("scratch",))) == (
        "0/3 nodes are available: PVC ns/p-scratch was not created for pod ns/p (pod is not owner)."
    )
    assert message(cluster, pod("p", ephemeral=("tmp",))) == (
        "0/3 nodes are available: waiting for ephemeral volume controller to create the "
        'persistentvolumeclaim "p-tmp".'
    )


def test_an_ephemeral_claim_bound_to_a_missing_volume_is_a_per_node_reason() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pvc("p-scratch", volume="gone", bound=True, owner_uid="uid-p"))
    assert message(cluster, pod("p", ephemeral=("scratch",))) == (
        f"0/3 nodes are available: 3 {PV_NOT_EXIST}."
    )


def test_an_in_tree_volume_is_refused_as_unsupported() -> None:
    cluster = Cluster(NODES)
    ebs = pv("ebs", phase="Bound", extra_spec={"awsElasticBlockStore": {"volumeID": "vol-1"}})
    cluster.add(storage_class(), ebs, pvc("data", volume="ebs", bound=True))
    decision, _ = cluster.decide(pod("p", claims=("data",)))
    assert decision.rejection is not None and decision.rejection.unsupported
    assert "awsElasticBlockStore" in decision.rejection.reason


def test_dynamic_provisioning_selects_a_node_the_class_allows() -> None:
    cluster = Cluster(NODES)
    zone = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["n3"]}]}]
    cluster.add(storage_class("csi", provisioner="csi.example.com", topologies=zone))
    cluster.add(pvc("data", storage_class="csi"))
    decision, _ = cluster.decide(pod("p", claims=("data",)))
    assert decision.node == "n3"
    plan = cluster.state.volumes.plan_of("uid-p")
    assert plan is not None and [c.name for c in plan.provisions] == ["data"]
    claim = cluster.state.volumes.claim("ns", "data")
    assert claim is not None and claim.selected_node == "n3"


def test_a_claim_being_provisioned_for_a_node_keeps_the_pod_there() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class("csi", provisioner="csi.example.com"))
    cluster.add(pvc("data", storage_class="csi", selected_node="n2"))
    decision, _ = cluster.decide(pod("p", claims=("data",)))
    assert decision.node == "n2"
    assert decision.reasons == {BIND_CONFLICT: 2}


def test_read_write_once_pod_claims_in_use_by_a_pod_in_flight_keep_others_out() -> None:
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pv("pv-1", node="n1", modes=("ReadWriteOncePod",)))
    cluster.add(pvc("solo", modes=("ReadWriteOncePod",)))
    assert cluster.decide(pod("first", claims=("solo",)))[0].node == "n1"
    assert message(cluster, pod("second", claims=("solo",))) == (
        f"0/3 nodes are available: 3 {READ_WRITE_ONCE_POD_CONFLICT}."
    )
    cluster.state.forget("uid-first")
    assert cluster.decide(pod("second", claims=("solo",)))[0].node == "n1"


def test_csinode_limits_count_each_volume_once_per_node() -> None:
    cluster = Cluster(["n1", "n2"])
    cluster.add(storage_class("csi", provisioner="csi.example.com", mode="Immediate"))
    cluster.add(csinode("n1", {"csi.example.com": 1}), csinode("n2", {"csi.example.com": 2}))
    for name in ("a", "b", "c"):
        cluster.add(
            pv(f"pv-{name}", storage_class="csi", phase="Bound", csi=("csi.example.com", name))
        )
        cluster.add(pvc(name, storage_class="csi", volume=f"pv-{name}", bound=True))
    cluster.add_pod(pod("holder", claims=("a",), node_name="n1"))
    cluster.add_pod(pod("holder-2", claims=("b",), node_name="n2"))
    # n1 is full; n2 has one volume of two.
    decision, _ = cluster.decide(pod("p", claims=("c",)), assume=True)
    assert decision.node == "n2"
    assert decision.reasons == {MAX_VOLUME_COUNT: 1}
    # The volume n1 already has does not count twice.
    decision, _ = cluster.decide(pod("sharer", claims=("a",)), assume=False)
    assert decision.feasible == 1 and decision.node == "n1"
    # n2 is full now that p is in flight there.
    cluster.add(pv("pv-d", storage_class="csi", phase="Bound", csi=("csi.example.com", "d")))
    cluster.add(pvc("d", storage_class="csi", volume="pv-d", bound=True))
    assert message(cluster, pod("q", claims=("d",))) == (
        f"0/2 nodes are available: 2 {MAX_VOLUME_COUNT}."
    )


def test_volume_zones_must_match_the_node() -> None:
    cluster = Cluster()
    cluster.add_node("n1", {"topology.kubernetes.io/zone": "a"})
    cluster.add_node("n2", {"topology.kubernetes.io/zone": "b"})
    zoned = pv("pv", phase="Bound", labels={"topology.kubernetes.io/zone": "b"})
    cluster.add(storage_class(), zoned, pvc("data", volume="pv", bound=True))
    decision, _ = cluster.decide(pod("p", claims=("data",)))
    assert decision.node == "n2" and decision.reasons == {ZONE_CONFLICT: 1}


def test_metric_labels_of_claim_rejections_name_no_object() -> None:
    """The unschedulable gauge's labels stay a fixed vocabulary whatever the claims are named."""
    cluster = Cluster(NODES)
    cluster.add(storage_class(), pvc("leaving-1", deleting=True), pvc("leaving-2", deleting=True))
    labels = set()
    for claims in (("missing-1",), ("missing-2",), ("leaving-1",), ("leaving-2",)):
        facts = read_pod(pod("p", claims=claims), cluster.config.request_policy)
        verdict = judge(cluster.state, cluster.decider, facts, assume=False)
        assert verdict.message.startswith('0/3 nodes are available: persistentvolumeclaim "')
        labels.add(unschedulable_labels(verdict))
    assert labels == {
        ("persistentvolumeclaim not found", ""),
        ("persistentvolumeclaim is being deleted", ""),
    }
