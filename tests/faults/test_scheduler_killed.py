"""SIGKILL the scheduler in the middle of a 500-pod burst and start it again.

Every pod that fits is bound exactly once, no node is oversubscribed, and once the accounting
controller's grace period has passed no reservation is left without its bound pod: what the
killed process had reserved but not bound is either bound by the new process (it finds the
reservation and honours it) or released by the controller (``NeverBound``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.faults.support import Lab, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 10
PER_NODE = 40  # 4000 Mbps NIC uplink, 100 Mbps pods
PODS = 500


def test_a_scheduler_killed_mid_burst_loses_and_double_books_nothing(lab: Lab) -> None:
    accounting = lab.accounting("--unbound-reservation-grace=3s")
    nodes = lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
    first = lab.scheduler(name="scheduler-killed")
    first.wait_synced()

    names = [f"burst-{i:03d}" for i in range(PODS)]
    burst = threading.Thread(target=lab.create_pods, args=(names,), daemon=True)
    started = time.monotonic()
    burst.start()
    wait_for("100 pods bound", lambda: len(lab.bound()) >= 100, timeout=60, interval=0.05)
    first.kill()
    at_kill = len(lab.bound())
    print(f"SIGKILL after {time.monotonic() - started:.1f}s with {at_kill} pods bound")

    second = lab.scheduler(name="scheduler-restarted")
    burst.join(60)
    wait_for(
        f"{NODES * PER_NODE} pods bound",
        lambda: len(lab.bound()) == NODES * PER_NODE,
        timeout=90,
        interval=0.25,
    )
    finished = time.monotonic() - started
    # The killed process's reservations without a binding expire after 3 s.
    result = lab.settled_audit()
    result.row(f"scheduler SIGKILLed at {at_kill}/{NODES * PER_NODE} bound, restarted")
    print(f"all {NODES * PER_NODE} bound {finished:.1f}s after the burst began")

    result.assert_clean()
    assert result.bound == Counter(dict.fromkeys(nodes, PER_NODE))
    assert result.pending == PODS - NODES * PER_NODE
    assert result.reservations == NODES * PER_NODE
    # Exactly once: no pod was reported scheduled by both processes.
    scheduled = Counter(e["pod"] for d in (first, second) for e in d.named("pod_scheduled"))
    assert max(scheduled.values()) == 1, scheduled.most_common(3)
    released = [e for e in accounting.named("reservation_released")]
    print(f"released by the accounting controller: {Counter(e['reason'] for e in released)}")
    for daemon in (second, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
