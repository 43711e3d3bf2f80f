"""Tables and documents rendered from snapshots built of plain objects: no server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from kubectl_bandwidth import render
from kubectl_bandwidth.diagnosis import explain_pod
from kubectl_bandwidth.headroom import node_headroom, select, sort_rows
from kubectl_bandwidth.holders import node_holding
from kubectl_bandwidth.whatif import read_workload, simulate
from kubeio.labels import LabelSelector
from tests.unit.kubectl_bandwidth.builders import (
    CONFIG,
    bandwidth,
    node,
    pod,
    reservation,
    snapshot,
    statefulset,
)

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def cells(line: str) -> list[str]:
    """A table line's cells: columns are at least three spaces apart, cells hold at most one."""
    return re.split(r"\s{3,}", line.strip())


@pytest.mark.parametrize(
    ("used", "capacity", "expected"),
    [
        (0, 1000, "······"),
        (1, 1000, "█·····"),
        (500, 1000, "███···"),
        (999, 1000, "█████·"),
        (1000, 1000, "██████"),
        (1500, 1000, "██████"),
        (0, 0, "······"),
        (5, 0, "██████"),
    ],
)
def test_bar_shows_any_use_and_full_only_when_full(used: int, capacity: int, expected: str) -> None:
    assert render.bar(used, capacity) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-3, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (601, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (10 * 86400 + 5, "10d"),
    ],
)
def test_ages_read_like_kubectl(seconds: float, expected: str) -> None:
    assert render.format_age(seconds) == expected


def test_table_aligns_columns_and_trims_trailing_space() -> None:
    text = render.table(["A", "LONGER"], [["xyz", "1"], ["q", ""]])
    assert text.splitlines() == ["A     LONGER", "xyz   1", "q"]


def _cluster() -> list[object]:
    return [
        [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "b"}), node("n3")],
        [
            bandwidth(
                "n1",
                reservations=[reservation("u1", 300, 100), reservation("u2", 300, 100)],
                status={"state": "Ready"},
            ),
            bandwidth("n2"),
        ],
        [
            pod("p1", uid="u1", node_name="n1", egress="300M", ingress="100M"),
            pod("p2", uid="u2", node_name="n1", egress="300M", ingress="100M"),
            # placed by another scheduler, no ledger entry: observed
            pod("other", node_name="n2", egress="50M", scheduler="default-scheduler"),
        ],
    ]


def test_status_table_lists_each_node_with_bars_charged_capacity_and_free() -> None:
    nodes, ledgers, pods = _cluster()
    rows = node_headroom(snapshot(nodes, ledgers, pods))  # type: ignore[arg-type]
    # Local before network, uplink before downlink: the README's and the demo's order.
    assert render.render_status(rows).splitlines() == [
        "NODE   LOCAL UL (Mbps)                 LOCAL DL (Mbps)                 "
        "NET UL (Mbps)                NET DL (Mbps)                PODS",
        "n1     █····· 600/20000 (19400 free)   █····· 200/20000 (19800 free)   "
        "████·· 600/1000 (400 free)   █····· 200/1000 (800 free)   2",
        "n2     █····· 50/20000 (19950 free)    ······ 0/20000 (20000 free)     "
        "█····· 50/1000 (950 free)    ······ 0/1000 (1000 free)    1",
        "n3     -                               -                               "
        "-                            -                            0",
        "3 node(s); charged/capacity: local uplink 650/40000, local downlink 200/40000, "
        "network uplink 650/2000, network downlink 200/2000 Mbps.",
        "n3: no Bandwidth object",
    ]


def test_status_wide_adds_states_and_counts_of_ledger_and_observed_pods() -> None:
    nodes, ledgers, pods = _cluster()
    rows = node_headroom(snapshot(nodes, ledgers, pods))  # type: ignore[arg-type]
    lines = render.render_status(rows, wide=True).splitlines()
    assert lines[0].split("PODS")[1].split() == [
        "NODE", "STATUS", "STATE", "RESERVATIONS", "OBSERVED", "PROBLEM"
    ]  # fmt: skip
    assert lines[1].split()[-6:] == ["2", "Ready", "Ready", "2", "0", "-"]
    assert lines[2].split()[-6:] == ["1", "Ready", "-", "0", "1", "-"]
    assert cells(lines[3]) == ["n3", "-", "-", "-", "-", "0", "Ready", "-", "0", "0",
                               "no Bandwidth object"]  # fmt: skip


def test_status_document_is_valid_json_and_yaml_with_mbps_per_axis() -> None:
    nodes, ledgers, pods = _cluster()
    rows = node_headroom(snapshot(nodes, ledgers, pods))  # type: ignore[arg-type]
    document = render.status_document(rows)
    assert json.loads(render.dump(document, "json")) == document
    assert yaml.safe_load(render.dump(document, "yaml")) == document
    first, second, third = document["nodes"]
    assert first["free"] == {
        "local": {"ulMbps": 19400, "dlMbps": 19800},
        "network": {"ulMbps": 400, "dlMbps": 800},
    }
    assert (first["reservations"], first["observed"], first["state"]) == (2, 0, "Ready")
    assert second["charged"]["network"] == {"ulMbps": 50, "dlMbps": 0}
    assert second["reservedInLedger"]["network"] == {"ulMbps": 0, "dlMbps": 0}
    assert (third["capacity"], third["free"], third["problem"]) == (
        None,
        None,
        "no Bandwidth object",
    )


def test_sorting_puts_the_most_room_first_and_nodes_without_ledger_last() -> None:
    nodes, ledgers, pods = _cluster()
    rows = node_headroom(snapshot(nodes, ledgers, pods))  # type: ignore[arg-type]
    assert [r.name for r in sort_rows(rows, "network-free")] == ["n2", "n1", "n3"]
    assert [r.name for r in sort_rows(rows, "network-dl-free")] == ["n2", "n1", "n3"]
    assert [r.name for r in sort_rows(rows, "pods")] == ["n1", "n2", "n3"]
    assert [r.name for r in sort_rows(rows, "name")] == ["n1", "n2", "n3"]
    assert [r.name for r in select(rows, LabelSelector.parse("zone=b"))] == ["n2"]
    assert [r.name for r in select(rows, LabelSelector.parse("!zone"))] == ["n3"]


def test_pending_pod_is_explained_with_the_schedulers_reason_counts() -> None:
    taint = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    nodes = [node("full"), node("roomy"), node("tainted", taints=[taint]), node("bare")]
    ledgers = [
        bandwidth("full", reservations=[reservation("u1", 900, 0)]),
        bandwidth("roomy"),
        bandwidth("tainted"),
    ]
    said = "0/4 nodes are available: earlier words."
    waiting = pod(
        "big",
        egress="500M",
        conditions=[{"type": "PodScheduled", "status": "False", "message": said}],
    )
    explanation = explain_pod(snapshot(nodes, ledgers), waiting)
    assert [(v.node, v.feasible, v.rank) for v in explanation.verdicts] == [
        ("roomy", True, 1),
        ("full", False, None),
        ("bare", False, None),
        ("tainted", False, None),
    ]
    assert explanation.summary == (
        "1/4 nodes are available; the scheduler would choose roomy; the others: "
        "1 insufficient network uplink bandwidth (need 500 Mbps), "
        "1 node(s) had no Bandwidth object yet, "
        "1 node(s) had untolerated taint {dedicated: infra}."
    )
    text = render.render_explanation(explanation, NOW)
    assert text.splitlines()[:4] == [
        "Pod lab/big is Pending and not bound (scheduler vaclab-scheduler).",
        "Request:        500 Mbps up / 0 Mbps down",
        f"Scheduler said: {said}",
        f"Now:            {explanation.summary}",
    ]
    assert text.splitlines()[5].split()[4:8] == ["LOCAL", "UL", "FREE", "LOCAL"]
    assert text.splitlines()[6].split() == ["1", "roomy", "yes", "0.0", "20000", "20000", "1000",
                                            "1000", "-"]  # fmt: skip
    assert cells(text.splitlines()[7]) == ["-", "full", "no", "-", "19100", "20000", "100",
        "1000", "insufficient network uplink bandwidth (need 500 Mbps)"]  # fmt: skip


def test_unschedulable_summary_is_the_schedulers_message_word_for_word() -> None:
    nodes = [node("a"), node("b")]
    ledgers = [bandwidth("a", network=(100, 100)), bandwidth("b", network=(100, 100))]
    explanation = explain_pod(snapshot(nodes, ledgers), pod("big", egress="1G", ingress="1G"))
    assert explanation.summary == (
        "0/2 nodes are available: 2 insufficient network downlink bandwidth (need 1000 Mbps), "
        "2 insufficient network uplink bandwidth (need 1000 Mbps)."
    )
    assert explanation.best is None
    assert all(
        v.reasons
        == (
            "insufficient network uplink bandwidth (need 1000 Mbps)",
            "insufficient network downlink bandwidth (need 1000 Mbps)",
        )
        for v in explanation.verdicts
    )


def test_bound_pod_shows_its_node_and_its_reservation() -> None:
    nodes = [node("n1")]
    ledgers = [bandwidth("n1", reservations=[reservation("u1", 300, 100, name="p1")])]
    bound = pod("p1", uid="u1", node_name="n1", egress="300M", ingress="100M", phase="Running",
                owner=("StatefulSet", "peers"))  # fmt: skip
    explanation = explain_pod(
        snapshot(nodes, ledgers, [bound], statefulsets=[statefulset("peers", 3)]), bound
    )
    assert render.render_explanation(explanation, NOW).splitlines() == [
        "Pod lab/p1 is on node n1 (Running, scheduler vaclab-scheduler).",
        "Request:     300 Mbps up / 100 Mbps down",
        "Workload:    StatefulSet/peers: 3 replica(s) expected, 1 placed",
        "Reservation: 300 Mbps up / 100 Mbps down in the ledger of n1 by vaclab-scheduler, 60s ago",
        "Node free:   network 700 up / 900 down, local 19700 up / 19900 down (Mbps)",
    ]
    document = render.explanation_document(explanation)
    assert document["node"] == "n1" and document["source"] == "Scheduler"
    assert document["reservation"]["reservedAt"] == "2030-01-01T11:59:00Z"


def test_observed_pod_is_charged_without_a_reservation() -> None:
    placed = pod("o", node_name="n1", egress="10M", scheduler="default-scheduler")
    explanation = explain_pod(snapshot([node("n1")], [bandwidth("n1")], [placed]), placed)
    text = render.render_explanation(explanation, NOW)
    assert "Reservation: none in the ledger; charged as Observed (default-scheduler)" in text


def test_invalid_annotation_is_reported_as_the_scheduler_does_without_filtering() -> None:
    explanation = explain_pod(snapshot([node("n1")], [bandwidth("n1")]), pod("bad", egress="fast"))
    assert explanation.verdicts == ()
    assert explanation.refused == "InvalidBandwidthRequest"
    why = (
        "annotation kubernetes.io/egress-bandwidth='fast' is invalid: not a quantity "
        "(expected e.g. 100M, 1G, or a bare number of Mbps)"
    )
    assert explanation.summary == why
    assert render.render_explanation(explanation, NOW).splitlines() == [
        "Pod lab/bad is Pending and not bound (scheduler vaclab-scheduler).",
        f"Request: invalid: {why}",
        f"Now:     refused before any node is considered (InvalidBandwidthRequest): {why}",
    ]
    document = render.explanation_document(explanation)
    assert document["request"]["invalid"] == why
    assert document["refused"] == "InvalidBandwidthRequest"


def test_what_if_places_statefulset_siblings_together_then_spills() -> None:
    nodes = [node("a"), node("b"), node("c")]
    # b has room for one sibling only: the two that spill from a go together to c.
    ledgers = [bandwidth("a"), bandwidth("b", network=(150, 150)), bandwidth("c")]
    manifest = {
        "kind": "StatefulSet",
        "metadata": {"name": "peers"},
        "spec": {
            "replicas": 12,
            "template": {
                "metadata": {"annotations": {"kubernetes.io/egress-bandwidth": "100M"}},
                "spec": {"schedulerName": "vaclab-scheduler", "containers": [{"name": "x"}]},
            },
        },
    }
    view = snapshot(nodes, ledgers)
    result = simulate(view, read_workload(manifest, default_namespace="lab", replicas=None))
    assert result.fits
    assert result.placed == {"a": 10, "c": 2}
    assert [p.pod for p in result.placements][:2] == ["peers-0", "peers-1"]
    lines = render.render_what_if(result).splitlines()
    assert lines[:2] == [
        "StatefulSet lab/peers: 12 replica(s), each 100 Mbps up / 0 Mbps down.",
        "12/12 replica(s) would be placed: 10 on a, 2 on c.",
    ]
    assert lines[4].split()[:10] == ["a", "+10", "20000", "→", "19000", "of", "20000", "20000",
                                     "→", "20000"]  # fmt: skip
    assert lines[4].split()[12:16] == ["1000", "→", "0", "of"]
    document = render.what_if_document(result)
    assert document["nodes"][1]["freeAfter"]["network"] == {"ulMbps": 800, "dlMbps": 1000}


def test_what_if_reports_replicas_that_would_stay_pending() -> None:
    manifest = {
        "kind": "Pod",
        "metadata": {"name": "solo", "namespace": "x"},
        "spec": {"containers": [{"name": "x"}], "schedulerName": "default-scheduler"},
    }
    manifest["metadata"]["annotations"] = {"kubernetes.io/egress-bandwidth": "600M"}
    view = snapshot([node("a")], [bandwidth("a")])
    result = simulate(view, read_workload(manifest, default_namespace="lab", replicas=3))
    assert result.placed == {"a": 1} and not result.fits
    lines = render.render_what_if(result, wide=True).splitlines()
    assert lines[1:4] == [
        "1/3 replica(s) would be placed: 1 on a.",
        "2 would stay Pending (FailedScheduling): 0/1 nodes are available: "
        "1 insufficient network uplink bandwidth (need 600 Mbps).",
        "Note: the pods name scheduler 'default-scheduler'; the vaclab scheduler "
        "(--scheduler-name) would not place them.",
    ]
    assert lines[-3].split()[:2] == ["solo-0", "a"]
    assert lines[-1].startswith("solo-2   -      FailedScheduling: 0/1 nodes are available")


def test_holders_list_ledger_and_observed_pods_with_their_workloads() -> None:
    ledger = bandwidth(
        "n1",
        reservations=[
            reservation("u1", 100, 100, name="web-7d9f-abcde"),
            reservation("u2", 200, 0, name="peers-0", link_local=True),
            reservation("u3", 50, 50, name="gone"),
        ],
        status={
            "reservations": [{"podUID": "u2", "workload": {"kind": "Job", "name": "from-status"}}]
        },
    )
    pods = [
        pod(
            "web-7d9f-abcde",
            uid="u1",
            node_name="n1",
            owner=("ReplicaSet", "web-7d9f"),
            labels={"pod-template-hash": "7d9f"},
            phase="Running",
        ),
        pod("peers-0", uid="u2", owner=("StatefulSet", "peers")),
        pod(
            "other",
            uid="u4",
            node_name="n1",
            egress="10M",
            scheduler="default-scheduler",
            phase="Running",
        ),
    ]
    holding = node_holding("n1", ledger, pods, CONFIG.request_policy)
    lines = render.render_holding(holding, NOW).splitlines()
    assert lines == [
        "POD                  WORKLOAD          UL Mbps   DL Mbps   LINK-LOCAL   SOURCE      "
        "POD STATE   AGE",
        "lab/gone             -                 50        50        no           Scheduler   "
        "Gone        60s",
        "lab/other            -                 10        0         no           Observed    "
        "Running     -",
        "lab/peers-0          Job/from-status   200       0         yes          Scheduler   "
        "Unbound     60s",
        "lab/web-7d9f-abcde   Deployment/web    100       100       no           Scheduler   "
        "Running     60s",
        "4 pod(s) hold bandwidth on n1; charged/capacity: local uplink 360/20000, "
        "local downlink 150/20000, network uplink 160/1000, network downlink 150/1000 Mbps.",
    ]
    document = render.holding_document(holding)
    assert [h["workload"] for h in document["holders"]] == [
        None,
        None,
        "Job/from-status",
        "Deployment/web",
    ]
