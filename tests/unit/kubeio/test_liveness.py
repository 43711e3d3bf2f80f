"""Heartbeats and timed tasks: ok while progress is recent, failing once stopped or stalled;
an orderly stop is not a failure. ``/healthz`` lists them as kube components do."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from kubeio.liveness import Heartbeat, Tasks
from kubeio.serving import HealthServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_fails_when_its_loop_stalls_and_recovers_when_it_moves() -> None:
    clock = Clock()
    beat = Heartbeat("loop", stall_after=10, clock=clock)
    assert beat.check() == (True, "idle")
    beat.start()
    clock.now += 9
    assert beat.check() == (True, "ok")
    beat.beat("posting an event")
    clock.now += 11
    assert beat.check() == (False, "no progress for 11s (posting an event)")
    beat.beat()
    assert beat.check() == (True, "ok")


def test_a_heartbeat_fails_when_its_loop_ends_unless_retired() -> None:
    beat = Heartbeat("loop", stall_after=10)
    with pytest.raises(RuntimeError), beat.running():
        raise RuntimeError("boom")
    assert beat.check() == (False, "stopped: RuntimeError: boom")
    orderly = Heartbeat("loop", stall_after=10)
    with orderly.running():
        orderly.retire()
    assert orderly.check() == (True, "retired")


def test_tasks_fail_when_the_oldest_runs_too_long() -> None:
    clock = Clock()
    tasks = Tasks("pool", stall_after=60, clock=clock)
    assert tasks.check() == (True, "idle")
    with tasks.task("binding lab/web-0"):
        clock.now += 61
        assert tasks.check() == (False, "a task running for 61s (binding lab/web-0)")
    assert tasks.check() == (True, "idle")


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_names_the_loops_that_failed() -> None:
    server = HealthServer("127.0.0.1:0")
    good, bad = Heartbeat("watch-nodes", 10), Heartbeat("watch-pods", 10)
    for beat in (good, bad):
        beat.start()
        server.add_liveness_check(beat)
    server.start()
    try:
        assert _get(server.port, "/healthz") == (200, "ok\n")
        assert _get(server.port, "/healthz?verbose") == (
            200,
            "[+]watch-nodes ok\n[+]watch-pods ok\nhealthz check passed\n",
        )
        bad.end("Unreachable: watch /api/v1/pods")
        assert _get(server.port, "/healthz") == (
            500,
            "[-]watch-pods failed: stopped: Unreachable: watch /api/v1/pods\n"
            "healthz check failed\n",
        )
        server.stopping()  # loops end on purpose now
        assert _get(server.port, "/livez")[0] == 200
    finally:
        server.stop()
