"""Bind a pod's volumes through the API before the pod itself: kube-scheduler's VolumeBinding
PreBind, on workers of its own (waiting for a provisioner may take minutes).

The plan was assumed with the decision (``scheduler.volumes.catalog``); the binder calls
``start`` once the pod's bandwidth is reserved::

    start ─► PATCH each chosen PV: claimRef to its claim       (resourceVersion precondition)
          ─► PATCH each claim to provision: selected-node       (resourceVersion precondition)
          ─► wait on the watch caches until the PV controller (and for a provisioned claim, the
             external provisioner) has bound every claim          ──► settle, then(): bind pod
                   │ a write refused, a claim reference reset, the selected-node annotation
                   │ removed (the provisioner gave up), a volume the node cannot use, the pod or
                   │ node gone, or the timeout (``volume_bind_timeout_seconds``, 600 s as
                   ▼ kube-scheduler's)
          FailedScheduling event on the pod, failed(error): the binder releases the bandwidth
          and forgets the decision, which reverts the plan; the pod is retried after a backoff

As in kube-scheduler, writes that landed are not rolled back: a PV whose claimRef names the
claim is bound to it by the PV controller anyway, and a claim keeps its selected node, so the
next attempt finds the claim bound (or still provisioning) on that node and follows it there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from kubeio.errors import ApiError, Conflict, NotFound, TransientError
from kubeio.events import WARNING, EventRecorder, ObjectRef
from kubeio.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubeio.rest import MERGE_PATCH, KubeApi
from kubeio.retry import wait_retry_after
from scheduler.cluster import ClusterState
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import PodFacts
from scheduler.volumes.claims import VolumePlan
from scheduler.volumes.matching import volume_fits_node
from scheduler.volumes.objects import BOUND_BY_CONTROLLER, SELECTED_NODE

log = structlog.get_logger("scheduler.volumes")

FAILED_SCHEDULING = "FailedScheduling"


class VolumeBindingFailed(Exception):
    """Binding the volumes cannot succeed this time; the message says why."""


class VolumeBinder:
    def __init__(
        self,
        api: KubeApi,
        state: ClusterState,
        events: EventRecorder,
        *,
        timeout_seconds: float,
        still_wanted: Callable[[str], bool],
        workers: int = 64,
    ) -> None:
        """``still_wanted(uid)`` says whether the pod still waits for this scheduler (not
        deleted, not bound by someone else); it is called without the state lock held."""
        self._api = api
        self._state = state
        self._events = events
        self._timeout = timeout_seconds
        self._still_wanted = still_wanted
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="volumes")
        self._stopping = threading.Event()

    def start(
        self,
        ctx: PodContext,
        node: str,
        then: Callable[[], None],
        failed: Callable[[ApiError], None],
    ) -> bool:
        """Bind the pod's volumes, then call ``then`` (or ``failed``); False, and nothing
        called, when the pod has no volume to bind."""
        plan = self._state.volumes.plan_of(ctx.pod.uid)
        if plan is None or plan.empty:
            return False
        if self._stopping.is_set():  # the workers are gone: undo at once
            failed(ApiError(0, "binding volumes: the scheduler is stopping"))
            return True
        self._pool.submit(self._run, ctx.pod, node, plan, then, failed)
        return True

    def stop(self) -> None:
        """End the waits (each fails, so its reservation is released) and the workers."""
        self._stopping.set()
        with self._state.volumes.changed:
            self._state.volumes.changed.notify_all()
        self._pool.shutdown(wait=True)

    def _run(
        self,
        pod: PodFacts,
        node: str,
        plan: VolumePlan,
        then: Callable[[], None],
        failed: Callable[[ApiError], None],
    ) -> None:
        started = time.monotonic()
        try:
            if plan.problem:
                raise VolumeBindingFailed(plan.problem)
            if plan.node != node:  # never expected: the plan is assumed with the decision
                raise VolumeBindingFailed(f"the volumes were planned for node {plan.node}")
            written = self._write(plan)
            self._wait(pod, plan, written)
        except Exception as error:
            if isinstance(error, VolumeBindingFailed | ApiError):
                log.info("volume_binding_failed", pod=pod.key, node=plan.node, error=str(error))
            else:
                log.exception("volume_binding_failed", pod=pod.key, node=plan.node)
            message = f"binding volumes: {error}"
            self._events.record(
                ObjectRef("Pod", "v1", pod.name, pod.uid, pod.namespace),
                WARNING,
                FAILED_SCHEDULING,
                message,
            )
            failed(ApiError(0, message))
            return
        self._state.volumes.settle(pod.uid)
        log.info(
            "volumes_bound",
            pod=pod.key,
            node=plan.node,
            bound=[volume.name for _, volume in plan.bindings],
            provisioned=[claim.name for claim in plan.provisions],
            seconds=round(time.monotonic() - started, 3),
        )
        then()

    # Writes -----------------------------------------------------------------------------------

    def _write(self, plan: VolumePlan) -> dict[str, int]:
        """Resource versions our writes returned, by PV name and by claim key."""
        written: dict[str, int] = {}
        for claim, volume in plan.bindings:
            metadata: dict[str, Any] = {"resourceVersion": str(volume.resource_version)}
            if volume.bound_by_controller:
                metadata["annotations"] = {BOUND_BY_CONTROLLER: "yes"}
            claim_ref = {
                "kind": "PersistentVolumeClaim",
                "apiVersion": "v1",
                "namespace": claim.namespace,
                "name": claim.name,
                "uid": claim.uid,
                "resourceVersion": str(claim.resource_version),
            }
            path = PERSISTENTVOLUMES.path(name=volume.name)
            what = f"persistentvolume {volume.name} (for claim {claim.key})"
            body = {"metadata": metadata, "spec": {"claimRef": claim_ref}}
            written[volume.name] = self._patch(path, body, what)
        for claim in plan.provisions:
            body = {
                "metadata": {
                    "resourceVersion": str(claim.resource_version),
                    "annotations": {SELECTED_NODE: plan.node},
                }
            }
            path = PERSISTENTVOLUMECLAIMS.path(namespace=claim.namespace, name=claim.name)
            written[claim.key] = self._patch(path, body, f"persistentvolumeclaim {claim.key}")
        return written

    def _patch(self, path: str, body: dict[str, Any], what: str) -> int:
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(TransientError),
                wait=wait_retry_after(wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)),
                stop=stop_after_attempt(4),
                reraise=True,
            ):
                with attempt:
                    result = self._api.patch(path, body, MERGE_PATCH)
        except Conflict as error:
            raise VolumeBindingFailed(f"{what} changed since it was chosen") from error
        except NotFound as error:
            raise VolumeBindingFailed(f"{what} was deleted") from error
        except ApiError as error:
            raise VolumeBindingFailed(f"updating {what}: {error}") from error
        try:
            return int((result.get("metadata") or {}).get("resourceVersion") or 0)
        except ValueError:
            return 0

    # Wait -------------------------------------------------------------------------------------

    def _wait(self, pod: PodFacts, plan: VolumePlan, written: dict[str, int]) -> None:
        deadline = time.monotonic() + self._timeout
        catalog = self._state.volumes
        while True:
            if self._stopping.is_set():
                raise VolumeBindingFailed("the scheduler is stopping")
            if not self._still_wanted(pod.uid):
                raise VolumeBindingFailed("the pod was deleted or bound meanwhile")
            with catalog.changed:
                pending = self._pending(plan, written)
                if not pending:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VolumeBindingFailed(
                        f"timed out after {self._timeout:g}s waiting for {pending}"
                    )
                # Woken by every volume event; the pod and the node are checked each second.
                catalog.changed.wait(min(left, 1.0))

    def _pending(self, plan: VolumePlan, written: dict[str, int]) -> str:
        """What is still awaited ("" when every claim is bound); raises when it never will be.
        Reads the apiserver's objects as last watched, never the assumed ones: only they say
        what the PV controller and the provisioner did. Call with the state lock held."""
        catalog = self._state.volumes
        info = self._state.nodes.get(plan.node)
        if info is None or info.facts is None:
            raise VolumeBindingFailed(f"node {plan.node} was deleted")
        labels = info.facts.labels
        for claim, chosen in plan.bindings:
            volume = catalog.api_volume(chosen.name)
            current = catalog.api_claim(claim.namespace, claim.name)
            if volume is None:
                raise VolumeBindingFailed(f"persistentvolume {chosen.name} was deleted")
            if current is None:
                raise VolumeBindingFailed(f"persistentvolumeclaim {claim.key} was deleted")
            if volume.resource_version < written.get(volume.name, 0):
                return f"the watch to show persistentvolume {volume.name} as written"
            if not volume_fits_node(volume, labels):
                raise VolumeBindingFailed(
                    f'pv "{volume.name}" node affinity doesn\'t match node "{plan.node}"'
                )
            if volume.claim_ref is None or not volume.claim_ref.uid:
                raise VolumeBindingFailed(f'ClaimRef got reset for pv "{volume.name}"')
            if not current.fully_bound:
                return (
                    f"persistentvolumeclaim {claim.key} to be bound to persistentvolume "
                    f"{volume.name} by the PV controller (is kube-controller-manager running?)"
                )
        for claim in plan.provisions:
            current = catalog.api_claim(claim.namespace, claim.name)
            if current is None:
                raise VolumeBindingFailed(f"persistentvolumeclaim {claim.key} was deleted")
            if current.resource_version < written.get(claim.key, 0):
                return f"the watch to show persistentvolumeclaim {claim.key} as written"
            if current.selected_node != plan.node:
                # A provisioner that cannot provision removes the annotation to ask for another
                # node.
                raise VolumeBindingFailed(f'provisioning failed for PVC "{claim.name}"')
            if current.volume_name:
                volume = catalog.api_volume(current.volume_name)
                if volume is None:
                    return f"persistentvolume {current.volume_name} to show in the watch"
                if not volume_fits_node(volume, labels):
                    raise VolumeBindingFailed(
                        f'pv "{volume.name}" node affinity doesn\'t match node "{plan.node}"'
                    )
            if not current.fully_bound:
                storage_class = catalog.storage_class(current.storage_class)
                provisioner = storage_class.provisioner if storage_class is not None else "?"
                return (
                    f"persistentvolumeclaim {claim.key} to be provisioned on node {plan.node} "
                    f'(is the provisioner "{provisioner}" running?)'
                )
        return ""
