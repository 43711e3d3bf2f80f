"""Fixtures for tests against the real local control plane (see ``tests/conftest.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient

from localcluster import create_simulated_nodes, delete_simulated_nodes


@pytest.fixture
def simulated_nodes(api_client: ApiClient) -> Iterator[Callable[..., list[str]]]:
    """A factory ``make(count, **kwargs) -> names`` for simulated nodes.

    Nodes get a per-test name prefix unless ``name_prefix`` is given, take every keyword of
    ``localcluster.create_simulated_nodes`` and are deleted when the test ends.
    """
    created: list[str] = []
    prefix = f"sim-{uuid.uuid4().hex[:6]}"

    def make(count: int, **kwargs: Any) -> list[str]:
        kwargs.setdefault("name_prefix", prefix)
        kwargs.setdefault("start_index", len(created))
        names = create_simulated_nodes(api_client, count, **kwargs)
        created.extend(names)
        return names

    yield make
    if created:
        delete_simulated_nodes(api_client, names=created)
