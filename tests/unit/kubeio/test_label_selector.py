"""Label selector strings, parsed and matched as the apiserver does."""

from __future__ import annotations

import pytest

from kubeio.labels import InvalidSelector, LabelSelector

LABELS = {"pool": "lab", "zone": "a", "gpu": "", "vaclab.org/simulated": "true"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("pool=lab", True),
        ("pool==lab", True),
        ("pool=prod", False),
        ("pool!=prod", True),
        ("missing!=x", True),  # != matches a missing label, as the apiserver does
        ("pool", True),
        ("!pool", False),
        ("!missing", True),
        ("zone in (a, b)", True),
        ("zone in (b,c)", False),
        ("zone notin (b,c)", True),
        ("missing notin (b)", True),
        ("missing in (b)", False),
        ("pool=lab,zone in (a),vaclab.org/simulated=true", True),
        ("pool=lab, zone=b", False),
        ("gpu=", True),
    ],
)
def test_matches_like_the_apiserver(selector: str, matches: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is matches


def test_empty_selector_matches_nodes_without_labels() -> None:
    assert LabelSelector.parse("").matches(None)
    assert LabelSelector().is_empty()
    assert not LabelSelector.parse("a=b").matches(None)


@pytest.mark.parametrize(
    ("selector", "complaint"),
    [
        ("pool=lab,", "empty requirement"),
        ("zone in (a", "unbalanced"),
        ("zone in a)", "unbalanced"),
        ("zone in ()", "empty value set"),
        ("-bad=x", "invalid label key"),
        ("pool=bad value", "invalid label value"),
        ("pool=" + "x" * 64, "invalid label value"),
    ],
)
def test_bad_selectors_are_refused_with_the_bad_part_named(selector: str, complaint: str) -> None:
    with pytest.raises(InvalidSelector, match=complaint):
        LabelSelector.parse(selector)


def test_keeps_its_text_for_logs() -> None:
    assert str(LabelSelector.parse(" pool=lab ")) == "pool=lab"
