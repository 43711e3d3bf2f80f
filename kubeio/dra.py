"""Watch what DRA claims hold on each node, for both daemons (``bandwidth.dra`` does the sums).

Two watch caches, both slimmed to what the count reads: the named driver's ResourceSlices
(``fieldSelector=spec.driver=<driver>``) and every ResourceClaim. Their handlers feed one
``DraHoldings`` and call ``on_change(nodes)`` with the nodes whose holding changed; the
callback must be quick (a handler's rules), and reads ``holding(node)`` for the new value.

Off unless a daemon is started with ``--dra-driver``: a cluster without DRA never sees these
requests. With it, the caches must sync before the daemon decides anything: an apiserver that
does not serve ``resource.k8s.io/v1`` is logged with what to enable, and the daemon waits.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from bandwidth.dra import DraHolding, DraHoldings, DraSharing, slim_claim, slim_slice
from kubeio.resources import RESOURCECLAIMS, RESOURCESLICES
from kubeio.rest import JSON, KubeApi
from kubeio.watchcache import DELETED, WatchCache

log = structlog.get_logger("kubeio.dra")

MISSING_HINT = (
    "resource.k8s.io/v1 is not served: DRA needs Kubernetes v1.34 or later "
    "(or run without --dra-driver)"
)

NodesChanged = Callable[[set[str]], None]


class DraWatch:
    """The two caches and the running count; see the module docstring."""

    def __init__(self, api: KubeApi, sharing: DraSharing, on_change: NodesChanged) -> None:
        self.sharing = sharing
        self._holdings = DraHoldings(sharing)
        self._on_change = on_change
        self._warned_unlocated: set[str] = set()
        self.slices = WatchCache(
            api,
            RESOURCESLICES,
            field_selector=f"spec.driver={sharing.driver}",
            transform=lambda obj: slim_slice(obj, sharing),
            missing_hint=MISSING_HINT,
        )
        self.claims = WatchCache(
            api,
            RESOURCECLAIMS,
            transform=lambda obj: slim_claim(obj, sharing),
            missing_hint=MISSING_HINT,
        )
        self.slices.add_handler(self._on_slice)
        self.claims.add_handler(self._on_claim)

    @property
    def caches(self) -> tuple[WatchCache, WatchCache]:
        return (self.slices, self.claims)

    def holding(self, node: str) -> DraHolding:
        return self._holdings.holding(node)

    def _on_slice(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        if kind == DELETED:
            changed = self._holdings.remove_slice(old or {})
        else:
            changed = self._holdings.put_slice(new or {})
        self._report(changed)

    def _on_claim(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        if kind == DELETED:
            changed = self._holdings.remove_claim(old or {})
        else:
            changed = self._holdings.put_claim(new or {})
            self._warn_if_unlocated(new or {})
        self._report(changed)

    def _warn_if_unlocated(self, claim: JSON) -> None:
        metadata = claim.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        uid = str(metadata.get("uid", ""))
        if (
            not self.slices.synced  # the slice may just not be listed yet
            or uid in self._warned_unlocated
            or not self._holdings.is_unlocated(namespace, name)
        ):
            return
        self._warned_unlocated.add(uid)
        # Counted as soon as a slice of the driver shows where its devices are.
        log.warning(
            "dra_claim_not_located",
            claim=f"{namespace}/{name}",
            driver=self.sharing.driver,
            hint="no ResourceSlice of the driver shows the allocated device's node yet",
        )

    def _report(self, changed: set[str]) -> None:
        if changed:
            log.debug("dra_holdings_changed", nodes=sorted(changed))
            self._on_change(changed)
