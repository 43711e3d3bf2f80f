"""--config: a YAML file whose keys are flag names; the command line still wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounting.cli import build_parser as accounting_parser
from kubeio.daemon import parse_args_with_config
from scheduler.cli import build_parser as scheduler_parser
from scheduler.cli import config_from_args


def test_file_values_are_converted_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "scheduler.yaml"
    config.write_text(
        "scheduler-name: lab\nweight_colocation: 7\nleader-elect: true\n"
        "egress-annotation: ovn.kubernetes.io/egress_rate\n"
    )
    args = parse_args_with_config(
        scheduler_parser(), ["--config", str(config), "--scheduler-name", "cli"]
    )
    settings = config_from_args(args)
    assert settings.scheduler_name == "cli"
    assert settings.weights.colocation == 7
    assert settings.request_policy.keys.egress == "ovn.kubernetes.io/egress_rate"
    assert args.leader_elect is True


def test_false_really_turns_a_switch_off(tmp_path: Path) -> None:
    config = tmp_path / "accounting.yaml"
    config.write_text("leader-elect: false\nunbound-reservation-grace: 90s\n")
    args = parse_args_with_config(accounting_parser(), ["--config", str(config), "--leader-elect"])
    assert args.leader_elect is True  # the command line wins
    args = parse_args_with_config(accounting_parser(), ["--config", str(config)])
    assert args.leader_elect is False
    assert args.unbound_reservation_grace == 90.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no-such-flag: 1\n", "unknown setting 'no-such-flag'"),
        ("leader-elect: maybe\n", "must be true or false"),
        ("- a list\n", "expected a mapping"),
        ("weight-colocation: [1, 2]\n", "must be a single value"),
    ],
)
def test_bad_files_are_refused_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit):
        parse_args_with_config(scheduler_parser(), ["--config", str(config)])
    assert message in capsys.readouterr().err
