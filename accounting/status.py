"""The Bandwidth status the books call for, and whether it differs from what is stored.

Pure. The state and the two conditions agree::

    state            Ready condition                 Oversubscribed condition
    Ready            True   WithinCapacity           False  WithinCapacity
    Oversubscribed   False  Oversubscribed           True   <axes>, e.g. NetworkUplink
    NodeNotFound     False  NodeNotFound             True or False, as the numbers say

``lastTransitionTime`` moves only when a condition's status flips. ``same_status`` ignores it
and ``updatedAt``, so a status that would only refresh timestamps is never written: a quiet
cluster costs the apiserver nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from accounting.books import Books
from bandwidth.budget import AXES, Axis
from bandwidth.dra import holding_status
from bandwidth.model import JSON, capacity_json, format_time

STATE_READY = "Ready"
STATE_OVERSUBSCRIBED = "Oversubscribed"
STATE_NODE_NOT_FOUND = "NodeNotFound"

READY = "Ready"
OVERSUBSCRIBED = "Oversubscribed"

WITHIN_CAPACITY = "WithinCapacity"

_VOLATILE_KEYS = ("updatedAt",)


def axis_reason(axes: Iterable[Axis]) -> str:
    """``NetworkUplink,LocalDownlink``: a condition reason naming the axes."""
    return ",".join(
        f"{axis.datapath.value.capitalize()}{axis.direction.value.capitalize()}" for axis in axes
    )


def oversubscription_message(books: Books) -> str:
    used = books.used
    over = set(books.oversubscribed)
    return "; ".join(
        f"{axis} uses {used.on(axis)} of {books.capacity.on(axis)} Mbps"
        for axis in AXES
        if axis in over
    )


def find_condition(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for entry in (status or {}).get("conditions") or []:
        if isinstance(entry, Mapping) and entry.get("type") == kind:
            return entry
    return None


def _condition(
    kind: str,
    holds: bool,
    reason: str,
    message: str,
    generation: int,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> JSON:
    status = "True" if holds else "False"
    earlier = find_condition(previous, kind)
    if (
        earlier is not None
        and earlier.get("status") == status
        and earlier.get("lastTransitionTime")
    ):
        since = str(earlier["lastTransitionTime"])
    else:
        since = format_time(now)
    return {
        "type": kind,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def state_of(books: Books, node_exists: bool) -> str:
    if not node_exists:
        return STATE_NODE_NOT_FOUND
    return STATE_OVERSUBSCRIBED if books.oversubscribed else STATE_READY


def desired_status(
    books: Books,
    *,
    node_exists: bool,
    generation: int,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> JSON:
    """The full status for the books; condition times carried over from ``previous``."""
    state = state_of(books, node_exists)
    over = books.oversubscribed
    if state == STATE_READY:
        ready_message = "usage is within capacity on every axis"
    elif state == STATE_OVERSUBSCRIBED:
        ready_message = oversubscription_message(books)
    else:
        ready_message = f"node {books.node} does not exist"
    conditions = [
        _condition(
            READY,
            state == STATE_READY,
            WITHIN_CAPACITY if state == STATE_READY else state,
            ready_message,
            generation,
            previous,
            now,
        ),
        _condition(
            OVERSUBSCRIBED,
            bool(over),
            axis_reason(over) if over else WITHIN_CAPACITY,
            oversubscription_message(books) if over else "usage is within capacity on every axis",
            generation,
            previous,
            now,
        ),
    ]
    status: JSON = {
        "state": state,
        "used": capacity_json(books.used),
        "remaining": capacity_json(books.remaining),
        "reservations": [charge.to_json() for charge in books.charges],
        "conditions": conditions,
        "observedGeneration": generation,
        "updatedAt": format_time(now),
    }
    if books.dra is not None:
        status.update(holding_status(books.dra))
    return status


def _comparable(status: Mapping[str, Any] | None) -> JSON:
    """The status less its timestamps; the rest shared with it, not copied (a deep copy of
    the per-pod list was a tenth of the accounting controller's CPU)."""
    result: JSON = {k: v for k, v in (status or {}).items() if k not in _VOLATILE_KEYS}
    conditions = result.get("conditions")
    if isinstance(conditions, list):
        result["conditions"] = [
            {k: v for k, v in entry.items() if k != "lastTransitionTime"}
            if isinstance(entry, Mapping)
            else entry
            for entry in conditions
        ]
    return result


def same_status(stored: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> bool:
    """Equal but for ``updatedAt`` and the conditions' ``lastTransitionTime``."""
    return _comparable(stored) == _comparable(desired)


def same_standing(stored: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """The same state and the same conditions (type, status, reason): what changed is numbers
    or the per-pod list, which may wait for the next paced write."""

    def standing(status: Mapping[str, Any] | None) -> tuple[object, ...]:
        conditions = sorted(
            (str(c.get("type")), str(c.get("status")), str(c.get("reason")))
            for c in (status or {}).get("conditions") or []
            if isinstance(c, Mapping)
        )
        return ((status or {}).get("state"), tuple(conditions))

    return stored is not None and standing(stored) == standing(desired)


def oversubscription_news(
    previous: Mapping[str, Any] | None, desired: Mapping[str, Any]
) -> str | None:
    """``"started"``, ``"changed"`` (other axes), ``"resolved"``, or ``None`` if no news."""
    before = find_condition(previous, OVERSUBSCRIBED)
    after = find_condition(desired, OVERSUBSCRIBED)
    was = before is not None and before.get("status") == "True"
    now_over = after is not None and after.get("status") == "True"
    if now_over and not was:
        return "started"
    if was and not now_over:
        return "resolved"
    if was and now_over and (before or {}).get("reason") != (after or {}).get("reason"):
        return "changed"
    return None
