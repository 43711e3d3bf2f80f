"""Restart kube-apiserver (same etcd, same port) in the middle of a burst.

Both daemons see their watches end and their requests refused while it is away; they back off,
reconnect, resume or relist their watches, and finish the work: every pod that fits bound
once, nothing lost, nothing double-booked, nothing leaked.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.faults.conftest import PrivateLab
from tests.faults.support import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 6
PER_NODE = 25  # 2500 Mbps NIC uplink, 100 Mbps pods
PODS = 200


def test_both_daemons_finish_a_burst_across_an_apiserver_restart(private_lab: PrivateLab) -> None:
    cp, lab = private_lab()
    accounting = lab.accounting("--unbound-reservation-grace=5s")
    nodes = lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
    wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
    scheduler = lab.scheduler()
    scheduler.wait_synced()

    names = [f"burst-{i:03d}" for i in range(PODS)]
    burst = threading.Thread(target=lab.create_pods, args=(names,), daemon=True)
    started = time.monotonic()
    burst.start()
    wait_for("40 pods bound", lambda: len(lab.bound()) >= 40, timeout=60, interval=0.05)
    at_restart = len(lab.bound())
    stopping = time.monotonic()
    starting = cp.restart_apiserver()
    away = time.monotonic() - stopping
    print(f"apiserver restarted at {at_restart} bound: away {away:.1f}s, {starting:.1f}s to start")

    burst.join(90)
    fits = NODES * PER_NODE
    wait_for(f"{fits} pods bound", lambda: len(lab.bound()) == fits, timeout=90, interval=0.25)
    print(f"all {fits} bound {time.monotonic() - started:.1f}s after the burst began")
    result = lab.settled_audit()
    result.row(f"kube-apiserver restarted at {at_restart}/{fits} bound")

    result.assert_clean()
    assert result.bound == Counter(dict.fromkeys(nodes, PER_NODE))
    assert result.pending == PODS - fits
    for daemon in (scheduler, accounting):
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
        reconnected = [e for e in daemon.events() if e.get("event") == "watch_failed"]
        assert reconnected, f"{daemon.name} never noticed the restart:\n{daemon.tail()}"
    print(
        "watches:",
        {
            d.name: Counter(e["event"] for e in d.events() if "watch" in e["event"])
            for d in (scheduler, accounting)
        },
    )
