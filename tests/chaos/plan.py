"""The fault schedule of a soak: which fault, when, with which parameters, from a seed alone.

Pure: :func:`fault_plan` draws from ``random.Random(seed)`` and nothing else, so the same seed,
duration, mix and mean interval give the same list of :class:`PlannedFault`, whatever the
cluster does. What a fault hits is named abstractly (a node *index*, a *share* along the bound
pods sorted by name, ``leader`` or ``standby``); the injector resolves it against the cluster of
the moment, so the schedule is reproducible while its effects depend on timing, as in Jepsen.

Kinds (:data:`FAULT_KINDS`, each with its default weight in the mix):

=====================  ==========================================================================
``apiserver_kill``     SIGKILL kube-apiserver; start it again (same etcd) after ``down`` seconds
``scheduler_kill``     SIGKILL the ``leader`` or ``standby`` scheduler replica; a new one starts
                       after ``restart_after`` seconds, as a Deployment would replace it
``accounting_kill``    SIGKILL the accounting controller; a new one after ``restart_after``
``api_errors``         the fault proxy of ``target`` answers ``share`` of requests with one of
                       ``statuses`` (409, 429 with ``Retry-After: 1``, 500) for ``seconds``
``partition``          ``target``'s proxy drops every connection and refuses new ones for
                       ``seconds``
``watch_drop``         ``target``'s proxy drops every open connection once (watches included)
``node_delete``        delete node ``node``; pods bound to it are collected after ``gc_after``
                       (the pod garbage collector's job) and the node comes back after
                       ``readd_after`` (a kubelet registering again)
``pod_recreate``       delete ``count`` bound pods (grace 0) and create them again at once under
                       the same names, as a StatefulSet does
``watch_gap``          partition both schedulers, recreate ``count`` pods, SIGKILL and start the
                       apiserver (its watch cache is emptied: watches must relist), heal
``capacity_edit``      set ``axes`` of node ``node``'s ``spec.capacity`` to ``factor`` times the
                       original (``factor`` 1.0: restore)
``bogus_reservation``  add to node ``node``'s ledger a reservation for a pod that does not exist
                       (``phantom``) or for a real pod's name with a made-up UID (``wrong_uid``)
``bandwidth_delete``   delete node ``node``'s Bandwidth object
=====================  ==========================================================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Params = Mapping[str, "float | int | str"]

TARGETS = ("scheduler-a", "scheduler-b", "accounting", "all")
"""Whose fault proxy a network fault applies to (``all``: every daemon's)."""

STATUSES = (409, 429, 500)
AXIS_SETS = ("network-ul", "network-dl", "network", "local", "all")


def _seconds(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 1)


def _apiserver_kill(rng: random.Random) -> dict[str, float | int | str]:
    return {"down": _seconds(rng, 1.0, 15.0)}


def _scheduler_kill(rng: random.Random) -> dict[str, float | int | str]:
    return {
        "target": "leader" if rng.random() < 0.7 else "standby",
        "restart_after": _seconds(rng, 0.5, 4.0),
    }


def _accounting_kill(rng: random.Random) -> dict[str, float | int | str]:
    return {"restart_after": _seconds(rng, 0.5, 4.0)}


def _api_errors(rng: random.Random) -> dict[str, float | int | str]:
    chosen = [status for status in STATUSES if rng.random() < 0.6] or [rng.choice(STATUSES)]
    return {
        "target": rng.choice(TARGETS),
        "statuses": ",".join(str(status) for status in chosen),
        "share": round(rng.uniform(0.2, 0.7), 2),
        "seconds": _seconds(rng, 2.0, 10.0),
    }


def _partition(rng: random.Random) -> dict[str, float | int | str]:
    return {"target": rng.choice(TARGETS), "seconds": _seconds(rng, 1.0, 12.0)}


def _watch_drop(rng: random.Random) -> dict[str, float | int | str]:
    return {"target": rng.choice(TARGETS)}


def _node_delete(rng: random.Random) -> dict[str, float | int | str]:
    return {
        "node": rng.randrange(1_000),
        "gc_after": _seconds(rng, 0.5, 5.0),
        "readd_after": _seconds(rng, 2.0, 15.0),
    }


def _pod_recreate(rng: random.Random) -> dict[str, float | int | str]:
    return {"count": rng.randint(1, 3), "share": round(rng.random(), 3)}


def _watch_gap(rng: random.Random) -> dict[str, float | int | str]:
    return {"count": rng.randint(1, 3), "share": round(rng.random(), 3)}


def _capacity_edit(rng: random.Random) -> dict[str, float | int | str]:
    factor = 1.0 if rng.random() < 0.3 else round(rng.uniform(0.3, 1.5), 2)
    return {"node": rng.randrange(1_000), "axes": rng.choice(AXIS_SETS), "factor": factor}


def _bogus_reservation(rng: random.Random) -> dict[str, float | int | str]:
    return {
        "node": rng.randrange(1_000),
        "variant": rng.choice(("phantom", "wrong_uid")),
        "mbps": rng.choice((50, 200, 600)),
        "share": round(rng.random(), 3),
    }


def _bandwidth_delete(rng: random.Random) -> dict[str, float | int | str]:
    return {"node": rng.randrange(1_000)}


ParamDraw = Callable[[random.Random], "dict[str, float | int | str]"]

FAULT_KINDS: Mapping[str, tuple[float, ParamDraw]] = {
    "apiserver_kill": (1.0, _apiserver_kill),
    "scheduler_kill": (2.0, _scheduler_kill),
    "accounting_kill": (1.5, _accounting_kill),
    "api_errors": (2.0, _api_errors),
    "partition": (1.5, _partition),
    "watch_drop": (1.5, _watch_drop),
    "node_delete": (1.0, _node_delete),
    "pod_recreate": (2.0, _pod_recreate),
    "watch_gap": (1.0, _watch_gap),
    "capacity_edit": (1.5, _capacity_edit),
    "bogus_reservation": (1.0, _bogus_reservation),
    "bandwidth_delete": (1.0, _bandwidth_delete),
}
"""Every fault kind: its default weight in the mix and how its parameters are drawn."""


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """One fault of the schedule. ``at`` is seconds after the soak's load began."""

    number: int
    at: float
    kind: str
    params: Params

    def describe(self) -> str:
        detail = " ".join(f"{key}={value}" for key, value in sorted(self.params.items()))
        return f"#{self.number} {self.kind}@{self.at:.1f}s {detail}".rstrip()


def parse_mix(text: str) -> dict[str, float]:
    """``"all"`` (every kind at its default weight), ``"apiserver_kill,partition"`` (those at
    their default weights) or ``"apiserver_kill=3,partition=1"``. Unknown kinds and negative
    weights raise ``ValueError`` naming them."""
    text = text.strip()
    if text in ("", "all"):
        return {kind: weight for kind, (weight, _) in FAULT_KINDS.items()}
    mix: dict[str, float] = {}
    for item in text.split(","):
        kind, _, weight = item.strip().partition("=")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        value = float(weight) if weight else FAULT_KINDS[kind][0]
        if value < 0:
            raise ValueError(f"fault weight of {kind} is negative: {value}")
        mix[kind] = value
    return mix


def format_mix(mix: Mapping[str, float]) -> str:
    return ",".join(f"{kind}={weight:g}" for kind, weight in mix.items() if weight > 0)


_DURATIONS = ("down", "seconds", "restart_after", "readd_after", "gc_after")


def _within(params: dict[str, float | int | str], left: float) -> dict[str, float | int | str]:
    """Durations cut so that the fault ends with the run (at least half a second)."""
    for key in _DURATIONS:
        if key in params:
            params[key] = max(0.5, min(float(params[key]), round(left, 1)))
    return params


def fault_plan(
    seed: int, seconds: float, mix: Mapping[str, float], mean_interval: float
) -> tuple[PlannedFault, ...]:
    """Faults arriving as a Poisson process of mean interval ``mean_interval`` over
    ``[0, seconds)``, kinds drawn by weight from ``mix``, each cut to end with the run. The
    same arguments give the same plan.
    """
    kinds = [kind for kind in FAULT_KINDS if mix.get(kind, 0.0) > 0]
    if not kinds or mean_interval <= 0:
        return ()
    weights = [mix[kind] for kind in kinds]
    rng = random.Random(seed)
    planned: list[PlannedFault] = []
    at = rng.expovariate(1.0 / mean_interval)
    while at < seconds:
        kind = rng.choices(kinds, weights)[0]
        params = _within(FAULT_KINDS[kind][1](rng), seconds - at)
        planned.append(PlannedFault(len(planned) + 1, round(at, 1), kind, params))
        at += rng.expovariate(1.0 / mean_interval)
    return tuple(planned)
