"""``vaclab-accounting``: flags (or a YAML config file), start-up, and the run loop.

With ``--leader-elect`` every replica keeps its caches warm and only the Lease holder writes
(``kubeio.daemon.run_daemon``); the process exits 1 when it loses the Lease.

Every flag may also be set in the file given to ``--config``, keyed by the flag's name
without dashes (``default-network-ul-mbps: 10000``); flags on the command line win.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import structlog

from accounting.capacity import SEED_DEFAULT_CAPACITY
from accounting.controller import Controller
from accounting.settings import COMPONENT, AccountingSettings
from bandwidth.budget import LinkBudget, Usage
from bandwidth.flags import (
    add_annotation_flags,
    add_dra_flags,
    annotation_keys_from,
    dra_sharing_from,
)
from kubeio.config import NoClusterConfig
from kubeio.daemon import (
    CannotServe,
    add_common_flags,
    exit_process,
    parse_args_with_config,
    run_daemon,
    start_daemon,
)
from kubeio.durations import parse_duration
from kubeio.labels import InvalidSelector, LabelSelector

log = structlog.get_logger(COMPONENT)

_CAPACITY_FLAGS = (
    ("local", "ul", SEED_DEFAULT_CAPACITY.local.ul_mbps),
    ("local", "dl", SEED_DEFAULT_CAPACITY.local.dl_mbps),
    ("network", "ul", SEED_DEFAULT_CAPACITY.network.ul_mbps),
    ("network", "dl", SEED_DEFAULT_CAPACITY.network.dl_mbps),
)


def _argument_type(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    checked.__name__ = convert.__name__
    return checked


def _whole_mbps(text: str) -> int:
    complaint = f"{text!r}: expected a whole number of Mbps >= 0"
    try:
        value = int(text)
    except ValueError as error:
        raise ValueError(complaint) from error
    if value < 0:
        raise ValueError(complaint)
    return value


def _selector(text: str) -> LabelSelector:
    try:
        return LabelSelector.parse(text)
    except InvalidSelector as error:
        raise ValueError(str(error)) from error


def _grace(text: str) -> float:
    # A fence names a reservation by node and reservedAt, in whole seconds: a grace of at least
    # one second keeps a released reservation and the next one of the same pod apart.
    seconds = parse_duration(text)
    if seconds < 1:
        raise ValueError(f"{text!r}: expected at least 1s")
    return seconds


def _positive_int(text: str) -> int:
    complaint = f"{text!r}: expected a whole number >= 1"
    try:
        value = int(text)
    except ValueError as error:
        raise ValueError(complaint) from error
    if value < 1:
        raise ValueError(complaint)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=COMPONENT,
        description="Keeps the books of network bandwidth per node: creates a Bandwidth object "
        "for every node, releases stale reservations and writes used and remaining bandwidth.",
    )
    add_common_flags(parser)
    for datapath, direction, default in _CAPACITY_FLAGS:
        word = "uplink" if direction == "ul" else "downlink"
        parser.add_argument(
            f"--default-{datapath}-{direction}-mbps",
            type=_argument_type(_whole_mbps),
            default=default,
            help=f"{datapath} {word} capacity of a new node's Bandwidth when the node carries no "
            f"bandwidth.vaclab.org/{datapath}-{direction}-mbps annotation or label "
            f"(default {default})",
        )
    add_annotation_flags(parser)
    parser.add_argument(
        "--unbound-reservation-grace",
        type=_argument_type(_grace),
        default="60s",
        help="release a reservation whose pod is still unbound this long after its reservedAt, "
        "at least 1s (default %(default)s)",
    )
    parser.add_argument(
        "--resync-period",
        type=_argument_type(parse_duration),
        default="5m",
        help="reconcile every node this often even without events; 0 turns it off "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--status-interval",
        type=_argument_type(parse_duration),
        default="1s",
        help="write a node's status at most this often while its state stays the same; a "
        "change of state (Oversubscribed, NodeNotFound) is written at once; 0: every change "
        "at once (default %(default)s)",
    )
    parser.add_argument(
        "--node-selector",
        type=_argument_type(_selector),
        default="",
        help="label selector of the nodes to manage, e.g. 'pool=lab,!virtual' (default: all)",
    )
    parser.add_argument(
        "--workers",
        type=_argument_type(_positive_int),
        default=4,
        help="nodes reconciled in parallel (default %(default)s)",
    )
    add_dra_flags(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return parse_args_with_config(build_parser(), argv)


def settings_from_args(args: argparse.Namespace) -> AccountingSettings:
    return AccountingSettings(
        default_capacity=Usage(
            local=LinkBudget(args.default_local_ul_mbps, args.default_local_dl_mbps),
            network=LinkBudget(args.default_network_ul_mbps, args.default_network_dl_mbps),
        ),
        annotation_keys=annotation_keys_from(args),
        unbound_grace_seconds=args.unbound_reservation_grace,
        resync_period_seconds=args.resync_period,
        status_interval_seconds=args.status_interval,
        node_selector=args.node_selector,
        workers=args.workers,
        dra=dra_sharing_from(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_args(args)
    try:
        context = start_daemon(args, COMPONENT)
    except (NoClusterConfig, CannotServe) as error:
        log.error("cannot_start", error=str(error))
        return 1
    log.info(
        "settings",
        default_capacity=str(settings.default_capacity),
        node_selector=str(settings.node_selector) or "(all nodes)",
        unbound_grace_seconds=settings.unbound_grace_seconds,
        resync_period_seconds=settings.resync_period_seconds,
        status_interval_seconds=settings.status_interval_seconds,
        egress_annotation=settings.annotation_keys.egress,
        ingress_annotation=settings.annotation_keys.ingress,
        dra=settings.dra.describe() if settings.dra else "off",
    )
    controller = Controller(context.api, settings, registry=context.registry)
    return run_daemon(args, context, COMPONENT, controller)


def run() -> NoReturn:
    """Console-script entry point: ``main`` in a process that ends with its exit code."""
    exit_process(main())


if __name__ == "__main__":
    run()
