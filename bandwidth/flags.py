"""The command-line flags that name a pod's bandwidth annotations, shared by both daemons and
``kubectl bandwidth`` so the three always read pods the same way; and the flags, shared by both
daemons, that name a DRA driver whose claims hold bandwidth too (``bandwidth.dra``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bandwidth.dra import DraSharing
from bandwidth.request import AnnotationKeys

DEFAULT_KEYS = AnnotationKeys()

_FLAGS = (
    ("--egress-annotation", "egress", "uplink bandwidth"),
    ("--ingress-annotation", "ingress", "downlink bandwidth"),
    ("--link-local-annotation", "link_local", "that the pod's traffic stays on its node"),
)


def add_annotation_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    default: Callable[[Any], Any] = lambda value: value,
) -> None:
    """``--egress-annotation``, ``--ingress-annotation``, ``--link-local-annotation``.

    ``default`` wraps each default, for parsers that share flags between subcommands.
    """
    for flag, field, what in _FLAGS:
        value = getattr(DEFAULT_KEYS, field)
        parser.add_argument(
            flag, default=default(value), help=f"pod annotation carrying {what} (default {value})"
        )


def annotation_keys_from(args: argparse.Namespace) -> AnnotationKeys:
    return AnnotationKeys(
        egress=args.egress_annotation,
        ingress=args.ingress_annotation,
        link_local=args.link_local_annotation,
    )


_DRA_DEFAULTS = DraSharing(driver="")


def add_dra_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--dra-driver`` (off when empty) and the device and capacity names beside it."""
    parser.add_argument(
        "--dra-driver",
        default="",
        help="count the bandwidth kube-scheduler gave to DRA ResourceClaims on devices of this "
        "DRA driver as used on their node (default: off)",
    )
    for flag, field, what in (
        ("--dra-nic-device", "nic_device", "the device of the driver that stands for a node's NIC"),
        (
            "--dra-vswitch-device",
            "vswitch_device",
            "the device that stands for a node's virtual switch",
        ),
        ("--dra-uplink-capacity", "uplink_capacity", "the devices' uplink capacity"),
        ("--dra-downlink-capacity", "downlink_capacity", "the devices' downlink capacity"),
    ):
        value = getattr(_DRA_DEFAULTS, field)
        parser.add_argument(flag, default=value, help=f"{what} (default {value})")


def dra_sharing_from(args: argparse.Namespace) -> DraSharing | None:
    """The DRA names the flags give, or None when ``--dra-driver`` is not set."""
    if not args.dra_driver:
        return None
    return DraSharing(
        driver=args.dra_driver,
        nic_device=args.dra_nic_device,
        vswitch_device=args.dra_vswitch_device,
        uplink_capacity=args.dra_uplink_capacity,
        downlink_capacity=args.dra_downlink_capacity,
    )
