"""Row methods for plugins whose answer depends only on the node's facts and the pod's
template: the plugin's own per-node method, run once per template and node facts revision
(``NodeTable.static``) — the same answers by construction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from scheduler.nodeinfo import NodeInfo
from scheduler.nodetable import Floats, Mask, NodeTable, Rows
from scheduler.plugins.framework import Reasons


def template(*parts: Any) -> str:
    """A key equal for pods whose ``parts`` are equal (a difference in key order is a miss,
    never a wrong hit)."""
    return repr(parts)


def static_fits(
    table: NodeTable, key: str, template_key: str, filter_node: Callable[[NodeInfo], Reasons]
) -> Mask:
    return table.static(key, template_key, filter_node).array("fits", _fits, np.bool_)


def static_reasons(
    table: NodeTable,
    key: str,
    template_key: str,
    filter_node: Callable[[NodeInfo], Reasons],
    rows: Rows,
) -> list[tuple[str, Mask]]:
    values = table.static(key, template_key, filter_node).values
    found: dict[str, Mask] = {}
    for position, row in enumerate(rows.tolist()):
        for reason in values[row]:
            mask = found.get(reason)
            if mask is None:
                mask = found[reason] = np.zeros(len(rows), np.bool_)
            mask[position] = True
    return list(found.items())


def static_scores(
    table: NodeTable,
    key: str,
    template_key: str,
    score_node: Callable[[NodeInfo], float],
    rows: Rows,
) -> Floats:
    return table.static(key, template_key, score_node).array("score", float, np.float64)[rows]


def _fits(reasons: Reasons) -> bool:
    return not reasons
