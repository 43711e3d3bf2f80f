"""What the daemons decode from the apiserver: orjson, and the standard library where orjson
refuses what the standard library reads."""

from __future__ import annotations

import math

import pytest

from kubeio.rest import loads


def test_an_object_decodes_as_the_standard_library_decodes_it() -> None:
    raw = b'{"kind": "Pod", "spec": {"priority": -7, "x": [1.5, true, null, "\\u00e9"]}}'
    assert loads(raw) == {"kind": "Pod", "spec": {"priority": -7, "x": [1.5, True, None, "é"]}}
    assert loads(raw.decode()) == loads(raw)


@pytest.mark.parametrize(
    ("raw", "check"),
    [
        (b'{"a": NaN}', lambda v: math.isnan(v["a"])),
        (b'{"a": 1e1000006}', lambda v: v["a"] == math.inf),
        (b'{"a": "\\ud800"}', lambda v: v["a"] == "\ud800"),
    ],
)
def test_what_orjson_refuses_is_read_by_the_standard_library(raw: bytes, check: object) -> None:
    assert callable(check) and check(loads(raw))


def test_what_neither_reads_fails_as_before() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a": ')
