"""``vaclab-accounting``: flags (or a YAML config file), start-up, and the run loop.

With ``--leader-elect`` every replica keeps its caches warm and only the Lease holder writes
(``kubeio.daemon.run_daemon``); the process exits 1 when it loses the Lease.

Every flag may also be set in the file given to ``--config``, keyed by the flag's name
without dashes (``default-network-ul-mbps: 10000``); flags on the command line win.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import yaml

from accounting.capacity import SEED_DEFAULT_CAPACITY
from accounting.controller import Controller
from accounting.settings import COMPONENT, AccountingSettings
from bandwidth.budget import LinkBudget, Usage
from bandwidth.request import (
    DEFAULT_EGRESS_KEY,
    DEFAULT_INGRESS_KEY,
    DEFAULT_LINK_LOCAL_KEY,
    AnnotationKeys,
)
from kubeio.config import NoClusterConfig
from kubeio.daemon import add_common_flags, run_daemon, start_daemon
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
    parser.add_argument(
        "--config", type=Path, help="YAML file of flag values, keyed by flag name without dashes"
    )
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
    parser.add_argument(
        "--egress-annotation",
        default=DEFAULT_EGRESS_KEY,
        help="pod annotation carrying uplink bandwidth (default %(default)s)",
    )
    parser.add_argument(
        "--ingress-annotation",
        default=DEFAULT_INGRESS_KEY,
        help="pod annotation carrying downlink bandwidth (default %(default)s)",
    )
    parser.add_argument(
        "--link-local-annotation",
        default=DEFAULT_LINK_LOCAL_KEY,
        help="pod annotation marking traffic that stays on the node (default %(default)s)",
    )
    parser.add_argument(
        "--unbound-reservation-grace",
        type=_argument_type(parse_duration),
        default="60s",
        help="release a reservation whose pod is still unbound this long after its reservedAt "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--resync-period",
        type=_argument_type(parse_duration),
        default="5m",
        help="reconcile every node this often even without events; 0 turns it off "
        "(default %(default)s)",
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
    return parser


def _config_defaults(
    parser: argparse.ArgumentParser, path: Path, values: Mapping[str, Any]
) -> dict[str, str]:
    """Config file entries as parser defaults (strings, so argparse converts and checks them)."""
    destinations = {
        option.lstrip("-"): action.dest
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    defaults: dict[str, str] = {}
    for key, value in values.items():
        name = str(key).replace("_", "-")
        if name not in destinations or name in ("config", "help"):
            parser.error(f"{path}: unknown setting {key!r}")
        if isinstance(value, Mapping | list) or value is None:
            parser.error(f"{path}: setting {key!r} must be a single value")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        defaults[destinations[name]] = text
    return defaults


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    if first.config is not None:
        try:
            values = yaml.safe_load(first.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            parser.error(f"cannot read --config {first.config}: {error}")
        if not isinstance(values, Mapping):
            parser.error(f"{first.config}: expected a mapping of setting names to values")
        parser.set_defaults(**_config_defaults(parser, first.config, values))
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> AccountingSettings:
    return AccountingSettings(
        default_capacity=Usage(
            local=LinkBudget(args.default_local_ul_mbps, args.default_local_dl_mbps),
            network=LinkBudget(args.default_network_ul_mbps, args.default_network_dl_mbps),
        ),
        annotation_keys=AnnotationKeys(
            egress=args.egress_annotation,
            ingress=args.ingress_annotation,
            link_local=args.link_local_annotation,
        ),
        unbound_grace_seconds=args.unbound_reservation_grace,
        resync_period_seconds=args.resync_period,
        node_selector=args.node_selector,
        workers=args.workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_args(args)
    try:
        context = start_daemon(args, COMPONENT)
    except NoClusterConfig as error:
        log.error("no_cluster", error=str(error))
        return 1
    log.info(
        "settings",
        default_capacity=str(settings.default_capacity),
        node_selector=str(settings.node_selector) or "(all nodes)",
        unbound_grace_seconds=settings.unbound_grace_seconds,
        resync_period_seconds=settings.resync_period_seconds,
        egress_annotation=settings.annotation_keys.egress,
        ingress_annotation=settings.annotation_keys.ingress,
    )
    controller = Controller(context.api, settings, registry=context.registry)
    return run_daemon(args, context, COMPONENT, controller)


if __name__ == "__main__":
    sys.exit(main())
