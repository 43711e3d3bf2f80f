"""``--help`` of every command explains every flag, and says its default when it has one."""

from __future__ import annotations

import argparse

import pytest

from accounting.cli import build_parser as accounting_parser
from kubectl_bandwidth.cli import build_parser as plugin_parser
from scheduler.cli import build_parser as scheduler_parser


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += options(sub)
    return found


@pytest.mark.parametrize("parser", [scheduler_parser, accounting_parser, plugin_parser])
def test_every_flag_has_help_naming_its_default(
    parser: type[argparse.ArgumentParser],
) -> None:
    for action in options(parser()):
        flag = action.option_strings[-1]
        assert action.help, f"{flag} has no help"
        has_default = action.default not in (None, False, argparse.SUPPRESS, "")
        if has_default and not isinstance(action, argparse._StoreTrueAction):
            assert "default" in action.help, f"{flag}: {action.help!r} does not say its default"


def test_scheduler_help_covers_the_flags_the_issue_named() -> None:
    text = scheduler_parser().format_help()
    for expected in (
        "--scheduler-name",
        "(default vaclab-scheduler)",
        "--weight-colocation",
        "(default 10)",
        "--bind-workers",
        "(default 64)",
        "(default 15s)",
        "(default 10s)",
        "(default 2s)",
    ):
        assert expected in text
