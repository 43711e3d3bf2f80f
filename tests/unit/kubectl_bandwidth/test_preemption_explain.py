"""``kubectl bandwidth explain`` on a pod nominated by a preemption and on its victim: no
server."""

from __future__ import annotations

from datetime import UTC, datetime

from kubectl_bandwidth.diagnosis import explain_pod
from kubectl_bandwidth.render import explanation_document, render_explanation
from tests.unit.kubectl_bandwidth.builders import bandwidth, node, pod, reservation, snapshot

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _lab() -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
    victim = pod("low", node_name="n1", egress="800M", phase="Running")
    victim["metadata"]["deletionTimestamp"] = "2030-01-01T11:59:30Z"
    victim["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
    ]
    urgent = pod("urgent", egress="700M")
    urgent["spec"]["priority"] = 1000
    urgent["status"]["nominatedNodeName"] = "n1"
    bystander = pod("bystander", egress="300M")
    return victim, urgent, bystander


def test_a_nominated_pod_shows_its_node_and_the_victims_it_waits_for() -> None:
    victim, urgent, bystander = _lab()
    view = snapshot(
        [node("n1")],
        [bandwidth("n1", reservations=[reservation("uid-low", 800, 0, name="low")])],
        [victim, urgent, bystander],
    )
    explanation = explain_pod(view, urgent)
    assert explanation.nominated == "n1"
    assert explanation.making_room == ("lab/low",)
    text = render_explanation(explanation, NOW)
    assert (
        "Nominated: n1: a preemption made room there, held for this pod until it is "
        "bound; waiting for lab/low to go"
    ) in text
    assert explanation_document(explanation)["nominatedNodeName"] == "n1"
    # A lower-priority pod sees the room as taken: the victim's 800 Mbps and the urgent 700.
    [verdict] = explain_pod(view, bystander).verdicts
    assert verdict.reasons == ("insufficient network uplink bandwidth (need 300 Mbps)",)


def test_a_preempted_pod_shows_it_holds_its_bandwidth_until_it_is_gone() -> None:
    victim, urgent, _ = _lab()
    view = snapshot(
        [node("n1")],
        [bandwidth("n1", reservations=[reservation("uid-low", 800, 0, name="low")])],
        [victim, urgent],
    )
    explanation = explain_pod(view, victim)
    text = render_explanation(explanation, NOW)
    assert "Preempted:" in text and "it holds its bandwidth until it is gone" in text
    assert explanation_document(explanation)["preempted"] is True
