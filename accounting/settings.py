"""What the accounting controller is told at start-up, as one immutable value."""

from __future__ import annotations

from dataclasses import dataclass, field

from accounting.capacity import SEED_DEFAULT_CAPACITY
from bandwidth.budget import Usage
from bandwidth.dra import DraSharing
from bandwidth.request import AnnotationKeys, RequestPolicy
from kubeio.labels import LabelSelector

COMPONENT = "vaclab-accounting"


@dataclass(frozen=True, slots=True)
class AccountingSettings:
    default_capacity: Usage = SEED_DEFAULT_CAPACITY
    """Capacity of a new node's Bandwidth where the node's labels and annotations say nothing."""
    annotation_keys: AnnotationKeys = AnnotationKeys()
    """Which pod annotations carry bandwidth, for pods placed by another scheduler."""
    unbound_grace_seconds: float = 60.0
    """How long a reservation may wait for its pod to be bound, from its ``reservedAt``."""
    resync_period_seconds: float = 300.0
    """Every node is reconciled this often even without events; 0 turns it off."""
    status_interval_seconds: float = 1.0
    """While a node's state stays the same, its status is written at most this often (the
    changes of an interval in one write); a change of state is written at once. 0: every
    change at once."""
    node_selector: LabelSelector = field(default_factory=LabelSelector)
    """Nodes the controller manages; the empty selector means every node."""
    workers: int = 4
    dra: DraSharing | None = None
    """The DRA driver whose allocated claims count as used on their node; None: off."""
    component: str = COMPONENT

    @property
    def request_policy(self) -> RequestPolicy:
        return RequestPolicy(keys=self.annotation_keys)
