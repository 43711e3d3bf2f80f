"""The command-line flags that name a pod's bandwidth annotations, shared by both daemons and
``kubectl bandwidth`` so the three always read pods the same way."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

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
