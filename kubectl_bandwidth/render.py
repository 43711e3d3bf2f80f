"""Text tables and JSON/YAML documents for every subcommand: pure functions of plain values.

Every ``render_*`` returns the text printed for the default and ``-o wide`` outputs; every
``*_document`` returns the plain dictionary printed for ``-o json`` and ``-o yaml`` (keys in
the Kubernetes camelCase, bandwidth in whole Mbps as in the Bandwidth CRD). Times that
matter (ages) come in as arguments, never from the clock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import yaml

from bandwidth.budget import AXES, Axis, Datapath, Direction, Usage
from bandwidth.model import capacity_json, format_time
from bandwidth.request import BandwidthRequest
from kubectl_bandwidth.diagnosis import Explanation, NodeVerdict
from kubectl_bandwidth.headroom import NodeHeadroom
from kubectl_bandwidth.holders import NodeHolding
from kubectl_bandwidth.whatif import WhatIf

JSON = dict[str, Any]

FULL = "█"
EMPTY = "·"
BAR_WIDTH = 6
OUTPUT_FORMATS = ("wide", "json", "yaml")

# Columns follow bandwidth.budget.AXES: local before network, uplink before downlink, as the
# demo's table and the Bandwidth CRD's printer columns.


# Building blocks ---------------------------------------------------------------------------


def bar(used: int, capacity: int, width: int = BAR_WIDTH) -> str:
    """``██····``: the share of ``capacity`` used; never empty when anything is used, never
    full while anything is left."""
    if capacity <= 0:
        return (FULL if used > 0 else EMPTY) * width
    if used <= 0:
        filled = 0
    elif used >= capacity:
        filled = width
    else:
        filled = min(width - 1, max(1, round(width * used / capacity)))
    return FULL * filled + EMPTY * (width - filled)


def axis_title(axis: Axis) -> str:
    """``NET UL``, ``LOCAL DL``."""
    datapath = "NET" if axis.datapath is Datapath.NETWORK else "LOCAL"
    return f"{datapath} {'UL' if axis.direction is Direction.UPLINK else 'DL'}"


def format_age(seconds: float) -> str:
    """kubectl's short ages: ``45s``, ``3m20s``, ``42m``, ``5h3m``, ``20h``, ``3d4h``, ``90d``."""
    total = max(0, int(seconds))
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns, three spaces apart, as kubectl prints them."""
    body = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in body) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in body
    )


def describe_request(request: BandwidthRequest) -> str:
    if request.is_zero():
        return "no bandwidth" + (" (link-local)" if request.link_local else "")
    return request.describe()


def usage_line(usage: Usage) -> str:
    """``network 900 up / 0 down, local 19900 up / 19000 down (Mbps)``."""
    return (
        f"network {usage.network.ul_mbps} up / {usage.network.dl_mbps} down, "
        f"local {usage.local.ul_mbps} up / {usage.local.dl_mbps} down (Mbps)"
    )


def dump(document: JSON, output: str) -> str:
    """The document as ``json`` (indented, like kubectl) or ``yaml``."""
    if output == "json":
        return json.dumps(document, indent=2)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip("\n")


def _optional_usage(usage: Usage | None) -> JSON | None:
    return capacity_json(usage) if usage is not None else None


# status ------------------------------------------------------------------------------------


def _headroom_cell(row: NodeHeadroom, axis: Axis) -> str:
    if row.capacity is None:
        return "-"
    used, capacity = row.charged.on(axis), row.capacity.on(axis)
    return f"{bar(used, capacity)} {used}/{capacity} ({capacity - used} free)"


def _dra_cell(dra: Usage | None) -> str:
    """``net 600/100 local 600/100``: what DRA claims hold, part of the charged amounts."""
    if dra is None:
        return "-"
    return (
        f"net {dra.network.ul_mbps}/{dra.network.dl_mbps} "
        f"local {dra.local.ul_mbps}/{dra.local.dl_mbps}"
    )


def render_status(rows: Sequence[NodeHeadroom], *, wide: bool = False) -> str:
    """One line per node: per axis a bar, charged/capacity and free Mbps; totals after."""
    if not rows:
        return "No nodes found."
    headers = ["NODE", *(f"{axis_title(axis)} (Mbps)" for axis in AXES), "PODS"]
    with_dra = any(row.dra is not None for row in rows)
    if with_dra:
        headers.append("DRA UL/DL (Mbps)")
    if wide:
        headers += ["NODE STATUS", "STATE", "RESERVATIONS", "OBSERVED", "PROBLEM"]
    lines = []
    for row in rows:
        cells = [row.name, *(_headroom_cell(row, axis) for axis in AXES), str(row.pods)]
        if with_dra:
            cells.append(_dra_cell(row.dra))
        if wide:
            cells += [
                row.node_condition,
                row.state or "-",
                str(row.reservations),
                str(row.observed),
                row.problem or "-",
            ]
        lines.append(cells)
    text = table(headers, lines)
    with_ledger = [row for row in rows if row.capacity is not None]
    capacity = sum((row.capacity for row in with_ledger if row.capacity), Usage())
    charged = sum((row.charged for row in with_ledger), Usage())
    footer = [
        f"{len(rows)} node(s); charged/capacity: "
        + ", ".join(f"{axis} {charged.on(axis)}/{capacity.on(axis)}" for axis in AXES)
        + " Mbps."
    ]
    if not wide:
        footer += [f"{row.name}: {row.problem}" for row in rows if row.problem]
    return text + "\n" + "\n".join(footer)


def status_document(rows: Sequence[NodeHeadroom]) -> JSON:
    return {
        "nodes": [
            {
                "name": row.name,
                "nodeStatus": row.node_condition,
                "state": row.state,
                "capacity": _optional_usage(row.capacity),
                "charged": capacity_json(row.charged),
                "free": _optional_usage(row.free),
                "reservedInLedger": capacity_json(row.in_ledger),
                "reservations": row.reservations,
                "observed": row.observed,
                "heldByDraClaims": _optional_usage(row.dra),
                "pods": row.pods,
                "problem": row.problem,
            }
            for row in rows
        ]
    }


# explain -----------------------------------------------------------------------------------


def _free_cells(free: Usage | None) -> list[str]:
    return [str(free.on(axis)) if free is not None else "-" for axis in AXES]


def _workload_line(explanation: Explanation) -> str | None:
    ctx = explanation.context
    if ctx.workload is None:
        return None
    line = f"{ctx.workload.kind}/{ctx.workload.name}"
    if ctx.expected_replicas is not None:
        line += f": {ctx.expected_replicas} replica(s) expected, {ctx.siblings_placed} placed"
    else:
        line += f": {ctx.siblings_placed} sibling(s) placed"
    return line


def _verdict_row(verdict: NodeVerdict) -> list[str]:
    return [
        str(verdict.rank) if verdict.rank is not None else "-",
        verdict.node,
        "yes" if verdict.feasible else "no",
        f"{verdict.score:.1f}" if verdict.score is not None else "-",
        *_free_cells(verdict.free),
        "; ".join(verdict.reasons) or "-",
    ]


def render_explanation(explanation: Explanation, now: datetime) -> str:
    pod = explanation.pod
    facts: list[tuple[str, str]] = []
    if pod.bound:
        head = (
            f"Pod {pod.key} is on node {pod.node_name} "
            f"({pod.phase}, scheduler {pod.scheduler_name})."
        )
    else:
        head = f"Pod {pod.key} is {pod.phase} and not bound (scheduler {pod.scheduler_name})."
    request = f"invalid: {pod.invalid}" if pod.invalid else describe_request(explanation.request)
    facts.append(("Request", request))
    workload = _workload_line(explanation)
    if workload:
        facts.append(("Workload", workload))
    if pod.bound:
        reservation = explanation.reservation
        if reservation is not None:
            held = describe_request(reservation.request)
            by = f" by {reservation.scheduler}" if reservation.scheduler else ""
            when = (
                f", {format_age((now - reservation.reserved_at).total_seconds())} ago"
                if reservation.reserved_at is not None
                else ""
            )
            facts.append(("Reservation", f"{held} in the ledger of {pod.node_name}{by}{when}"))
        elif explanation.source:
            facts.append(
                ("Reservation", f"none in the ledger; charged as Observed ({pod.scheduler_name})")
            )
        else:
            facts.append(("Reservation", "none: the pod asks for no bandwidth"))
        if explanation.node_free is not None:
            facts.append(("Node free", usage_line(explanation.node_free)))
        if pod.preempted:
            facts.append(
                (
                    "Preempted",
                    "by a scheduler, for a higher-priority pod; it holds its bandwidth "
                    "until it is gone"
                    if pod.deleting
                    else "by a scheduler; its deletion follows",
                )
            )
    else:
        if explanation.nominated:
            waiting = (
                f"; waiting for {', '.join(explanation.making_room)} to go"
                if explanation.making_room
                else ""
            )
            facts.append(
                (
                    "Nominated",
                    f"{explanation.nominated}: a preemption made room there, held for this pod "
                    f"until it is bound{waiting}",
                )
            )
        if explanation.scheduler_message:
            facts.append(("Scheduler said", explanation.scheduler_message))
        verdict = explanation.summary
        if explanation.refused:
            verdict = f"refused before any node is considered ({explanation.refused}): {verdict}"
        facts.append(("Now", verdict))
    if explanation.held_on:
        verdict = (
            f"it does not: {'; '.join(explanation.held_refused)}"
            if explanation.held_refused
            else "it does"
        )
        facts.append(
            (
                "Note",
                f"{explanation.held_on} already holds a reservation for this pod; the "
                f"scheduler binds it there if that node passes every filter ({verdict})",
            )
        )
    if not explanation.ours and not pod.bound:
        facts.append(
            (
                "Note",
                f"the pod names scheduler {pod.scheduler_name!r}; this view is the "
                "vaclab scheduler's (--scheduler-name)",
            )
        )
    if pod.gated:
        facts.append(("Note", "the pod has scheduling gates: no scheduler considers it yet"))
    width = max(len(label) for label, _ in facts) + 1
    lines = [head, *(f"{(label + ':').ljust(width)} {value}" for label, value in facts)]
    if explanation.verdicts:
        headers = [
            "RANK",
            "NODE",
            "FITS",
            "SCORE",
            *(f"{axis_title(axis)} FREE" for axis in AXES),
            "REASONS",
        ]
        lines += ["", table(headers, (_verdict_row(v) for v in explanation.verdicts))]
    return "\n".join(lines)


def explanation_document(explanation: Explanation) -> JSON:
    pod = explanation.pod
    ctx = explanation.context
    reservation = explanation.reservation
    return {
        "pod": {"namespace": pod.namespace, "name": pod.name, "uid": pod.uid},
        "phase": pod.phase,
        "schedulerName": pod.scheduler_name,
        "request": {**_request_json(explanation.request), "invalid": pod.invalid or None},
        "refused": explanation.refused or None,
        "workload": (
            {
                "kind": ctx.workload.kind,
                "name": ctx.workload.name,
                "expectedReplicas": ctx.expected_replicas,
                "siblingsPlaced": ctx.siblings_placed,
            }
            if ctx.workload is not None
            else None
        ),
        "node": explanation.node or None,
        "reservation": (
            {
                **_request_json(reservation.request),
                "scheduler": reservation.scheduler,
                "reservedAt": (
                    format_time(reservation.reserved_at) if reservation.reserved_at else None
                ),
            }
            if reservation is not None
            else None
        ),
        "source": explanation.source or None,
        "nodeFree": _optional_usage(explanation.node_free),
        "schedulerMessage": explanation.scheduler_message or None,
        "summary": explanation.summary or None,
        "best": explanation.best,
        "reservationHeldOn": explanation.held_on or None,
        "nominatedNodeName": explanation.nominated or None,
        "preempted": pod.preempted,
        "nodes": [
            {
                "node": v.node,
                "feasible": v.feasible,
                "rank": v.rank,
                "score": v.score,
                "reasons": list(v.reasons),
                "free": _optional_usage(v.free),
            }
            for v in explanation.verdicts
        ],
    }


def _request_json(request: BandwidthRequest) -> JSON:
    return {"ulMbps": request.ul_mbps, "dlMbps": request.dl_mbps, "linkLocal": request.link_local}


# what-if -----------------------------------------------------------------------------------


def what_if_summary(result: WhatIf) -> list[str]:
    """``15/15 replicas would be placed: 10 on a, 5 on b.`` and one line per pending reason,
    with the Event reason the scheduler would write."""
    total = len(result.placements)
    if total == 0:
        return ["Nothing to place."]
    placed = result.placed
    count = sum(placed.values())
    where = ", ".join(
        f"{n} on {node}" for node, n in sorted(placed.items(), key=lambda i: (-i[1], i[0]))
    )
    line = f"{count}/{total} replica(s) would be placed"
    lines = [line + (f": {where}." if where else ".")]
    pending = Counter((p.reason, p.message) for p in result.placements if p.node is None)
    for (reason, message), n in pending.items():
        lines.append(f"{n} would stay Pending ({reason}): {message}")
    return lines


def _existing_line(result: WhatIf) -> str | None:
    """What already runs of the workload, and what the simulation adds to it."""
    existing = result.existing
    if not existing.count:
        return None
    line = f"Running: {len(existing.bound)} bound, {len(existing.pending)} pending"
    if existing.removed:
        return line + (
            f"; scaling to {result.workload.replicas} removes {existing.removed} pod(s), "
            "nothing to place."
        )
    pending = f"the {len(existing.pending)} pending and " if existing.pending else ""
    return line + f"; simulated: {pending}{result.new} new replica(s)."


def render_what_if(result: WhatIf, *, wide: bool = False) -> str:
    workload = result.workload
    each = (
        "each with an invalid bandwidth request"
        if result.invalid
        else f"each {describe_request(result.request)}"
    )
    lines = [f"{workload}: {workload.replicas} replica(s), {each}."]
    existing = _existing_line(result)
    if existing:
        lines.append(existing)
    lines += what_if_summary(result)
    if not result.ours:
        lines.append(
            f"Note: the pods name scheduler {result.scheduler_name!r}; the vaclab scheduler "
            "(--scheduler-name) would not place them."
        )
    if result.changes:
        headers = ["NODE", "PODS", *(f"{axis_title(axis)} FREE (Mbps)" for axis in AXES)]
        rows = [
            [
                change.node,
                f"+{change.placed}",
                *(
                    _change_cell(
                        change.free_before.on(axis),
                        change.free_after.on(axis),
                        change.capacity.on(axis),
                    )
                    for axis in AXES
                ),
            ]
            for change in result.changes
        ]
        lines += ["", table(headers, rows)]
    if wide and result.placements:
        rows = [
            [
                p.pod + (" (exists)" if p.existing else ""),
                p.node or "-",
                f"{p.reason}: {p.message}" if p.reason else "-",
            ]
            for p in result.placements
        ]
        lines += ["", table(["POD", "NODE", "REASON"], rows)]
    return "\n".join(lines)


def render_what_ifs(results: Sequence[WhatIf], skipped: Sequence[str], *, wide: bool) -> str:
    """One answer per workload of the manifest, a blank line apart; skipped objects named."""
    text = "\n\n".join(render_what_if(result, wide=wide) for result in results)
    if skipped:
        text += "\n\nSkipped (not a Pod, Deployment or StatefulSet): " + ", ".join(skipped)
    return text


def _change_cell(change_before: int, change_after: int, capacity: int) -> str:
    return f"{change_before} → {change_after} of {capacity}"


def what_if_document(result: WhatIf) -> JSON:
    workload = result.workload
    return {
        "workload": {
            "kind": workload.kind,
            "namespace": workload.namespace,
            "name": workload.name,
            "replicas": workload.replicas,
        },
        "request": {**_request_json(result.request), "invalid": result.invalid or None},
        "schedulerName": result.scheduler_name,
        "fits": result.fits,
        "existing": {
            "bound": list(result.existing.bound),
            "pending": [p["metadata"]["name"] for p in result.existing.pending],
            "removed": result.existing.removed,
        },
        "placements": [
            {
                "pod": p.pod,
                "node": p.node,
                "reason": p.reason or None,
                "message": p.message or None,
                "existing": p.existing,
            }
            for p in result.placements
        ],
        "nodes": [
            {
                "node": change.node,
                "placed": change.placed,
                "capacity": capacity_json(change.capacity),
                "freeBefore": capacity_json(change.free_before),
                "freeAfter": capacity_json(change.free_after),
            }
            for change in result.changes
        ],
    }


def what_ifs_document(results: Sequence[WhatIf], skipped: Sequence[str]) -> JSON:
    """The one workload's document, or ``items`` with one per workload; ``skipped`` objects."""
    document: JSON = (
        what_if_document(results[0])
        if len(results) == 1
        else {"items": [what_if_document(result) for result in results]}
    )
    if skipped:
        document["skipped"] = list(skipped)
    return document


# reservations ------------------------------------------------------------------------------


def render_holding(holding: NodeHolding, now: datetime, *, wide: bool = False) -> str:
    capacity = holding.ledger.capacity
    charged = holding.charged
    footer = (
        f"{len(holding.holders)} pod(s) hold bandwidth on {holding.node}; charged/capacity: "
        + ", ".join(f"{axis} {charged.on(axis)}/{capacity.on(axis)}" for axis in AXES)
        + " Mbps."
    )
    if not holding.holders:
        return footer
    headers = ["POD", "WORKLOAD", "UL Mbps", "DL Mbps", "LINK-LOCAL", "SOURCE", "POD STATE", "AGE"]
    if wide:
        headers += ["SCHEDULER", "UID"]
    rows = []
    for holder in holding.holders:
        age = (
            format_age((now - holder.reserved_at).total_seconds())
            if holder.reserved_at is not None
            else "-"
        )
        row = [
            holder.pod,
            holder.workload or "-",
            str(holder.request.ul_mbps),
            str(holder.request.dl_mbps),
            "yes" if holder.request.link_local else "no",
            holder.source,
            holder.pod_state or "-",
            age,
        ]
        if wide:
            row += [holder.scheduler or "-", holder.uid]
        rows.append(row)
    return table(headers, rows) + "\n" + footer


def holding_document(holding: NodeHolding) -> JSON:
    return {
        "node": holding.node,
        "capacity": capacity_json(holding.ledger.capacity),
        "charged": capacity_json(holding.charged),
        "holders": [
            {
                "namespace": h.namespace,
                "name": h.name,
                "uid": h.uid,
                "workload": h.workload or None,
                **_request_json(h.request),
                "source": h.source,
                "scheduler": h.scheduler or None,
                "reservedAt": format_time(h.reserved_at) if h.reserved_at else None,
                "podState": h.pod_state or None,
            }
            for h in holding.holders
        ],
    }
