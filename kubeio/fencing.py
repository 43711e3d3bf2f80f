"""Fencing a pod before the reservation of its pending binding is released.

A reservation is released as never bound (``NeverBound``) when its pod is still unbound a
grace period after ``reservedAt``. A binding can still be on its way then (queued behind
others, retried through 429s), and the ledger and the pod are two objects: no single write
can both release the one and stop the other. The fence makes the race impossible instead of
unlikely. Its two halves::

    accounting controller                         scheduler (binder)
    ─────────────────────                         ──────────────────
    reads the ledger: R=(node, reservedAt)        writes R into the ledger
    PATCH pod: annotation = token(R)  ─ fence ─┐  reads the pod at resourceVersion v
      (changes the pod's resourceVersion)      │  POST pods/binding, precondition: v
      answer shows the pod bound? keep R, stop │    409 (v is stale): read the pod again;
    releases R (guarded ledger write)          │      annotation names R: do not bind, retry
                                               └─►    otherwise: bind again at the new v

Either the binding commits first (the fence's answer shows the pod bound, and nothing is
released), or the fence does, and every binding sent at an older resourceVersion fails its
precondition; one sent at a newer one comes from a read that shows the fence. The token names
the node and ``reservedAt`` (``Reservation.fence_token``): a later reservation of the same pod
(renewed by a scheduler that adopts it, or made afresh) has another, so an old fence never
stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeio.errors import Invalid, NotFound
from kubeio.resources import PODS
from kubeio.rest import JSON, KubeApi

RELEASED_ANNOTATION = "bandwidth.vaclab.org/released-reservation"
"""On a pod: the reservation of it that was released unbound, as ``<node> <reservedAt>``."""


def fenced(pod: Mapping[str, Any], token: str) -> bool:
    """Whether ``pod`` (raw JSON) carries the fence for the reservation ``token`` names."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return bool(token) and annotations.get(RELEASED_ANNOTATION) == token


def fence(api: KubeApi, namespace: str, name: str, uid: str, token: str) -> JSON | None:
    """Write the fence on pod ``namespace/name`` if it is still ``uid``; the pod after the
    write (check ``spec.nodeName``: a pod bound already keeps its reservation), or None when
    that pod no longer exists."""
    patch = {"metadata": {"uid": uid, "annotations": {RELEASED_ANNOTATION: token}}}
    try:
        return api.patch(PODS.path(namespace=namespace, name=name), patch)
    except NotFound:
        return None
    except Invalid as error:
        if "metadata.uid" in error.message:  # another pod of that name: ours is gone
            return None
        raise
