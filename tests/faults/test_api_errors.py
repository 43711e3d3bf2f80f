"""The apiserver answers 429 and 500 for a while (the fault proxy answers half the requests of
both daemons itself, ``429`` with ``Retry-After: 1``).

Retries back off: the proxy counts the requests of each daemon per second during the fault
window, and no second comes near a tight loop; once the work is done, neither daemon keeps
asking. Nothing is lost: every pod that fits is bound once, no node oversubscribed, no
reservation leaked.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from kubeio.rest import resource_of
from localcluster import ControlPlane
from tests.faults.proxy import FaultProxy, Record
from tests.faults.support import Lab, requests_per_second, wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

NODES = 5
PER_NODE = 10  # 1000 Mbps NIC uplink, 100 Mbps pods
PODS = 80
WINDOW = 12.0
SHARE = 0.5


def _per_second(records: list[Record], agent: str, start: float, end: float) -> list[int]:
    return requests_per_second((r.at for r in records if r.agent == agent), start, end)


def _retry_gaps(records: list[Record], agent: str, status: int) -> dict[str, list[float]]:
    """Seconds from each injected ``status`` to the next request of the same verb and path, by
    "VERB resource". Events are left out: a new Event is a POST to the same path, a repeat a
    PATCH of the same one, neither a retry."""
    gaps: dict[str, list[float]] = {}
    mine = [r for r in records if r.agent == agent and "/events" not in r.path]
    for index, failed in enumerate(mine):
        if failed.status != status:
            continue
        again = next(
            (r for r in mine[index + 1 :] if (r.method, r.path) == (failed.method, failed.path)),
            None,
        )
        if again is not None:
            what = f"{failed.method} {resource_of(failed.path)}"
            gaps.setdefault(what, []).append(round(again.at - failed.at, 3))
    return gaps


def test_429_and_500_for_a_while_make_both_daemons_back_off_and_lose_nothing(
    lab: Lab, controlplane: ControlPlane
) -> None:
    with FaultProxy(controlplane.credentials) as proxy:
        through_proxy = proxy.kubeconfig(lab.log_dir / "proxy.kubeconfig")
        # Longer than a binding retried through 429s (Retry-After: 1) can take: shorter, and a
        # reservation may be released as NeverBound while its pod is still being bound.
        accounting = lab.accounting("--unbound-reservation-grace=30s", kubeconfig=through_proxy)
        nodes = lab.make_nodes(NODES, network_mbps=PER_NODE * 100)
        wait_for("a Bandwidth per node", lambda: len(lab.bandwidths()) == NODES)
        scheduler = lab.scheduler(kubeconfig=through_proxy)
        scheduler.wait_synced()

        proxy.inject((429, 500), share=SHARE, seconds=WINDOW)
        start = time.monotonic()
        lab.create_pods([f"burst-{i:02d}" for i in range(PODS)])  # the test's own client
        fits = NODES * PER_NODE
        wait_for(f"{fits} pods bound", lambda: len(lab.bound()) == fits, timeout=120)
        done = time.monotonic()
        result = lab.settled_audit(timeout=45)
        quiet_from = time.monotonic()
        time.sleep(3.0)
        records = proxy.records()

    result.row(f"apiserver answers {SHARE:.0%} of requests 429/500 for {WINDOW:.0f}s")
    result.assert_clean()
    assert result.bound == Counter(dict.fromkeys(nodes, PER_NODE))
    assert result.pending == PODS - fits

    end = start + WINDOW
    injected = Counter((r.agent, r.status) for r in records if r.injected)
    print(f"all {fits} bound {done - start:.1f}s after the window opened; injected: {injected}")
    # 429 says Retry-After: 1. urllib3 waits it out by itself for GET; the scheduler's own
    # retries of its PATCHes (reservations) and POSTs (bindings) wait at least as long too.
    after_429 = _retry_gaps(records, lab.scheduler_name, 429)
    after_500 = _retry_gaps(records, lab.scheduler_name, 500)
    print(
        f"scheduler: seconds to the same request again after 429 {after_429}, after 500 {after_500}"
    )
    assert after_429 and all(min(gaps) >= 0.95 for gaps in after_429.values()), after_429
    assert all(min(gaps) >= 0.01 for gaps in after_500.values()), after_500
    for daemon, agent in ((scheduler, lab.scheduler_name), (accounting, "vaclab-accounting")):
        during = _per_second(records, agent, start, end)
        after = _per_second(records, agent, quiet_from, quiet_from + 3.0)
        print(f"{daemon.name}: requests per second in the window {during}, when idle {after}")
        assert sum(1 for r in records if r.agent == agent and r.injected) > 0
        # The burst itself (events, reservations, bindings) and its retries; a retry loop
        # without back-off would send hundreds a second through the proxy.
        assert max(during) <= 150, f"{daemon.name} hammered the apiserver: {during}"
        assert daemon.alive(), daemon.tail()
        assert not daemon.tracebacks(), daemon.tail()
