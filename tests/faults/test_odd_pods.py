"""Pods with absurd or odd bandwidth requests, and names as long as the apiserver accepts.

A value that cannot be honoured (``999999999G``, full-width digits, a link-local flag that is
no boolean) leaves the pod Pending with a Warning event naming the annotation; a valid pod with
a 253-character name is scheduled, reserved under its full name and explained like any other.
"""

from __future__ import annotations

from functools import partial

import pytest

from kubeio.errors import Invalid
from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

FULL_WIDTH_100M = "\uff11\uff10\uff10M"
ODD = {
    "absurd": {"kubernetes.io/egress-bandwidth": "999999999G"},
    "full-width": {"kubernetes.io/egress-bandwidth": FULL_WIDTH_100M},
    "negative": {"kubernetes.io/ingress-bandwidth": "-5M"},
    "not-a-flag": {
        "kubernetes.io/egress-bandwidth": "10M",
        "bandwidth.vaclab.org/link-local": "\uff54\uff52\uff55\uff45",  # "true", full width
    },
}


def _warnings(lab: Lab, name: str) -> list[str]:
    return [
        e["message"]
        for e in lab.events("Pod", name)
        if e["type"] == "Warning" and e["reason"] == "InvalidBandwidthRequest"
    ]


def test_odd_requests_wait_with_a_named_error_and_long_names_are_scheduled(lab: Lab) -> None:
    accounting = lab.accounting()
    [node] = lab.make_nodes(1, network_mbps=1000)
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    for name, notes in ODD.items():
        lab.create_pod(name, egress=None, annotations=notes)
    longest = ("x" * 250 + "end")[:253]
    with pytest.raises(Invalid):  # one more character is refused by the apiserver itself
        lab.create_pod(longest + "x", egress="100M")
    lab.create_pod(longest, egress="100M")
    lab.create_pod("plain", egress="100M")

    assert wait_for("the long-named pod bound", lambda: lab.bound().get(longest)) == node
    assert wait_for("the plain pod bound", lambda: lab.bound().get("plain")) == node
    for name, notes in ODD.items():
        [message] = wait_for(f"a warning on {name}", partial(_warnings, lab, name))
        key = next(k for k, v in notes.items() if repr(v) in message)
        assert f"annotation {key}=" in message, message
        print(f"{name}: {message}")
    assert set(lab.bound()) == {longest, "plain"}
    [entry] = [
        e for e in (lab.bandwidth(node) or {})["spec"]["reservations"] if e["podName"] == longest
    ]
    assert entry["bandwidth"] == {"ulMbps": 100, "dlMbps": 0}
    scheduled = wait_for(
        "the long-named pod's Scheduled event",
        lambda: [e for e in lab.events("Pod", longest) if e["reason"] == "Scheduled"],
    )
    assert longest in scheduled[0]["message"]
    result = lab.settled_audit()
    result.row("odd pods: 999999999G, full-width digits, -5M, a non-boolean flag, 253-char name")

    result.assert_clean()
    assert result.pending == len(ODD)
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
        assert not daemon.named("event_not_recorded"), daemon.named("event_not_recorded")
