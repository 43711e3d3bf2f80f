"""Numbers written to overflow: ``1e1000006`` in every place a daemon reads a quantity.

Kubernetes quantities may carry a decimal exponent, and the apiserver stores
``memory: 1e1000006`` as it is (it only checks the syntax). Every such value must take the
path of any other bad value (a Warning event naming it, one log line) and must cost nothing:

- a bandwidth annotation of a pod of ours: ``InvalidBandwidthRequest``, the pod waits;
- a bandwidth annotation of a pod bound by another scheduler: the accounting controller's
  ``InvalidBandwidthAnnotation``, the pod charged nothing;
- a node's capacity annotation: ``InvalidBandwidthCapacity`` on the node, no Bandwidth made;
- a resource request (``memory``, ``cpu``): the pod waits with the value named (reading
  ``1e1000006`` bytes as a Python integer took 29 s on the watch thread before the fix).

Afterwards both daemons still work: plain pods created after the hostile ones are bound.
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

HUGE = "1e1000006"


def _warnings(
    lab: Lab, kind: str, name: str, reason: str, namespace: str | None = None
) -> list[str]:
    return [
        e["message"]
        for e in lab.events(kind, name, namespace)
        if e["type"] == "Warning" and e["reason"] == reason
    ]


def test_a_quantity_written_to_overflow_is_a_named_bad_value_everywhere(lab: Lab) -> None:
    accounting = lab.accounting()
    [node] = lab.make_nodes(1, network_mbps=1000)
    [hostile_node] = lab.make_nodes(1, network_mbps=HUGE)
    wait_for("the Bandwidth", lambda: lab.bandwidth(node))
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    lab.create_pod("egress", egress=HUGE)
    lab.create_pod("ingress", egress=None, ingress=HUGE)
    lab.create_pod("memory", egress="10M", requests={"memory": HUGE})
    lab.create_pod("cpu", egress="10M", requests={"cpu": HUGE})
    lab.create_pod("theirs", egress=HUGE, scheduler_name="another-scheduler")
    lab.bind("theirs", node)
    lab.create_pod("after", egress="100M")

    assert wait_for("the plain pod bound", lambda: lab.bound().get("after"), timeout=30) == node
    for name, named in (
        ("egress", HUGE),
        ("ingress", HUGE),
        ("memory", "memory='10e1000005' is too large"),  # as the apiserver stores it
        ("cpu", "cpu='10e1000005' is too large"),
    ):
        [message] = wait_for(
            f"a warning on {name}", partial(_warnings, lab, "Pod", name, "InvalidBandwidthRequest")
        )
        assert named in message, message
        print(f"{name}: {message}")
    [message] = wait_for(
        "the accounting controller's warning",
        partial(_warnings, lab, "Pod", "theirs", "InvalidBandwidthAnnotation"),
    )
    assert HUGE in message and "charged no bandwidth" in message, message
    [message] = wait_for(
        "a warning on the node",
        partial(_warnings, lab, "Node", hostile_node, "InvalidBandwidthCapacity", "default"),
    )
    assert HUGE in message, message
    assert lab.bandwidth(hostile_node) is None
    result = lab.settled_audit()
    result.row(f"{HUGE} as bandwidth (ours, another scheduler's), node capacity, memory, cpu")

    result.assert_clean()
    assert set(lab.bound()) == {"theirs", "after"}
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
        assert not daemon.named("watch_cache_failure"), daemon.named("watch_cache_failure")
        assert not daemon.named("watch_handler_failed"), daemon.named("watch_handler_failed")
