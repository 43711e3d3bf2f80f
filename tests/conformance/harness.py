"""Run one case against both schedulers and compare what they say.

For each case up to three worlds (copies) are built side by side, each with one pod to place
(a *probe*), so no probe ever sees another's effect:

    world 0   the pod as generated          kube binds it to N (or finds no node):
                                            N must be a node our filters accept (or we
                                            must accept none)
    world 1   pinned to our choice           (when our filters accept a node) kube,
                                            restricted to that node by a metadata.name
                                            matchFields node affinity, must bind it there
                                            exactly when our filters accept the pinned pod
    world 2   pinned to a node we refuse    (when there is one) kube must refuse it
                                            exactly when our filters refuse the pinned pod

Pinning adds a required node affinity, which narrows the domains a spread constraint with
``nodeAffinityPolicy: Honor`` counts; each probe is therefore compared with our verdict on the
*same* pinned pod, never on the unpinned one.

Our verdict comes from the scheduler's own ``ClusterState`` and ``Decider``, kept current by
its own watch caches (a ``scheduler.loop.Scheduler`` started but not run): whatever caches or
plugins are registered there (volumes, say) take part without changes here, and a world's
extra objects of a kind it watches are awaited in its cache before the verdict.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bandwidth.request import RequestPolicy
from kubeio.resources import NAMESPACES, NODES, PODS
from kubeio.rest import KubeApi
from kubeio.watchcache import DELETED, WatchCache
from scheduler.decide import filter_node
from scheduler.decider import Decider
from scheduler.loop import Scheduler
from scheduler.podfacts import read_pod
from tests.conformance.generator import Case
from tests.conformance.world import PROBE_LABEL, World

JSON = dict[str, Any]
UNSCHEDULABLE = "unschedulable"
SETTLE_SECONDS = 0.5
"""Pause between our verdict and lifting the gate, so that kube-scheduler's informers, which
watch the same apiserver, have the world's nodes and namespaces too."""


@dataclass
class ProbeResult:
    world: str
    pinned: str | None
    ours: frozenset[str]
    kube: str | None
    kube_message: str = ""
    choice: str | None = None
    """The node our decider picks among those our filters accept."""
    refusals: Counter[str] = field(default_factory=Counter)
    """Our filters' reasons for the world's nodes they refuse."""

    @property
    def agrees(self) -> bool:
        if self.kube is None:
            return not self.ours
        return self.kube in self.ours

    def describe(self) -> str:
        where = f"pinned to {self.pinned}" if self.pinned else "unpinned"
        said = self.kube if self.kube is not None else f"no node ({self.kube_message})"
        return f"{where}: our filters accept {sorted(self.ours) or 'none'}; kube-scheduler: {said}"


@dataclass
class CaseResult:
    case: Case
    probes: list[ProbeResult] = field(default_factory=list)
    error: str = ""

    @property
    def agrees(self) -> bool:
        return not self.error and all(p.agrees for p in self.probes)


class Outcomes:
    """What kube-scheduler did with each probe, from a watch on probe pods."""

    def __init__(self, api: KubeApi) -> None:
        self._cache = WatchCache(api, PODS, label_selector=f"{PROBE_LABEL}=true")
        self._cache.add_handler(self._on_pod)
        self._seen: dict[str, tuple[str | None, str]] = {}
        self._changed = threading.Condition()

    def start(self) -> None:
        self._cache.start()
        self._cache.wait_synced(30)

    def stop(self) -> None:
        self._cache.stop()

    def _on_pod(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        if kind == DELETED or new is None:
            return
        uid = new["metadata"]["uid"]
        outcome: tuple[str | None, str] | None = None
        if new["spec"].get("nodeName"):
            outcome = (new["spec"]["nodeName"], "")
        else:
            for condition in (new.get("status") or {}).get("conditions") or []:
                if (
                    condition.get("type") == "PodScheduled"
                    and condition.get("status") == "False"
                    and condition.get("reason") == "Unschedulable"
                ):
                    outcome = (None, str(condition.get("message", "")))
        if outcome is not None:
            with self._changed:
                self._seen.setdefault(uid, outcome)
                self._changed.notify_all()

    def wait(self, uid: str, timeout: float) -> tuple[str | None, str] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while uid not in self._seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._seen.pop(uid)


class Harness:
    def __init__(
        self,
        api: KubeApi,
        ours: Scheduler,
        outcomes: Outcomes,
        run: str,
        *,
        decider: Decider | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._api = api
        self._ours = ours
        self._decider = decider or ours.decider
        self._outcomes = outcomes
        self._run = run
        self._timeout = timeout
        self._policy = RequestPolicy()

    def with_decider(self, decider: Decider) -> Harness:
        """The same harness judging with other plugins (to show it catches a wrong one)."""
        return Harness(
            self._api, self._ours, self._outcomes, self._run, decider=decider, timeout=self._timeout
        )

    def run_case(self, case: Case) -> CaseResult:
        result = CaseResult(case)
        worlds = [World(self._run, case, copy) for copy in range(3)]
        try:
            placed = [world.build(self._api) for world in worlds]
            first = self._probe(worlds[0], placed[0], None)
            result.probes.append(first)
            if first.ours:
                result.probes.append(self._probe(worlds[1], placed[1], first.choice))
            refused = sorted({n.name for n in case.nodes} - first.ours)
            if refused:
                target = random.Random(case.seed).choice(refused)
                result.probes.append(self._probe(worlds[2], placed[2], target))
        except Exception as error:  # reported with the seed; the run goes on
            result.error = f"{type(error).__name__}: {error}"
        finally:
            for world in worlds:
                world.tear_down(self._api)
        return result

    def _probe(self, world: World, placed: dict[str, JSON], pinned: str | None) -> ProbeResult:
        created = world.create_probe(self._api, pinned)
        stored = self._wait_for_our_view(world, placed, created)
        ours, choice, refusals = self._our_verdict(world, stored)
        time.sleep(SETTLE_SECONDS)
        world.release_probe(self._api)
        outcome = self._outcomes.wait(created["metadata"]["uid"], self._timeout)
        if outcome is None:
            raise TimeoutError(
                f"kube-scheduler said nothing of world {world.id} in {self._timeout}s"
            )
        node, message = outcome
        return ProbeResult(
            world=world.id,
            pinned=pinned,
            ours=ours,
            kube=world.logical_node(node) if node is not None else None,
            kube_message=message,
            choice=choice,
            refusals=refusals,
        )

    def _wait_for_our_view(self, world: World, placed: dict[str, JSON], probe: JSON) -> JSON:
        """The probe as our pod cache holds it, once the cache and the cluster state have
        every object of the world as created (terminating pods as terminating)."""
        state = self._ours.state
        caches = {cache.kind: cache for cache in self._ours.caches}
        pods_cache = caches[PODS.plural]
        # Objects of other kinds our scheduler watches (volume cases' PVs, PVCs...).
        extras = [
            (caches[resource.plural], f"{namespace}/{name}" if namespace else name)
            for resource, namespace, name in world.created
            if resource.plural in caches and resource not in (PODS, NAMESPACES, NODES)
        ]
        probe_key = f"{probe['metadata']['namespace']}/{probe['metadata']['name']}"
        deadline = time.monotonic() + self._timeout

        def ready() -> JSON | None:
            stored = pods_cache.get(probe_key)
            if stored is None or stored["metadata"]["uid"] != probe["metadata"]["uid"]:
                return None
            if any(cache.get(key) is None for cache, key in extras):
                return None
            with state.lock:
                for plan in world.case.nodes:
                    info = state.nodes.get(world.node(plan.name))
                    if info is None or info.facts is None:
                        return None
                for logical in world.case.namespaces:
                    if world.namespace(logical) not in state.namespaces:
                        return None
                for plan in world.case.placed:
                    info = state.nodes.get(world.node(plan.node))
                    pod = info.pods.get(placed[plan.name]["metadata"]["uid"]) if info else None
                    if pod is None or pod.deleting != plan.terminating:
                        return None
            return stored

        while (stored := ready()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"our caches did not show world {world.id} in time")
            time.sleep(0.02)
        return stored

    def _our_verdict(
        self, world: World, stored: JSON
    ) -> tuple[frozenset[str], str | None, Counter[str]]:
        ungated = {**stored, "spec": {**stored["spec"], "schedulingGates": []}}
        facts = read_pod(ungated, self._policy)
        state = self._ours.state
        refusals: Counter[str] = Counter()
        accepted = set()
        with state.lock:
            ctx = state.context_for(facts)
            for plan in world.case.nodes:
                reasons = filter_node(
                    ctx, state.nodes[world.node(plan.name)], self._decider.filters
                )
                refusals.update(reasons)
                if not reasons:
                    accepted.add(plan.name)
            choice = self._decider.choose(state, ctx).node if accepted else None
        return frozenset(accepted), world.logical_node(choice) if choice else None, refusals


def run_cases(
    harness: Harness,
    cases: list[Case],
    workers: int,
    progress: Callable[[CaseResult], None] = lambda result: None,
) -> list[CaseResult]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="conformance") as pool:
        results = []
        for result in pool.map(harness.run_case, cases):
            progress(result)
            results.append(result)
    return results
