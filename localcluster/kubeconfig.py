"""Kubeconfig files and API clients for a local control plane."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes.client import ApiClient, Configuration


@dataclass(frozen=True)
class ClientCredentials:
    """How to reach and authenticate to an apiserver with a client certificate."""

    server: str
    ca_cert: Path
    client_cert: Path
    client_key: Path


def write_kubeconfig(
    path: Path, creds: ClientCredentials, *, cluster: str = "vaclab-local", user: str = "admin"
) -> Path:
    """Write a kubeconfig with one cluster, one user and one (current) context.

    File paths, not inline data, are referenced: the file is valid as long as the
    certificate files exist.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": creds.server, "certificate-authority": str(creds.ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(creds.client_cert),
                    "client-key": str(creds.client_key),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def new_api_client(creds: ClientCredentials, *, pool_size: int = 32) -> ApiClient:
    """A ``kubernetes.client.ApiClient`` authenticated with ``creds``.

    ``pool_size`` bounds the HTTP connections kept open: size it to the number of threads
    that share the client.
    """
    config = Configuration(
        host=creds.server,
        ssl_ca_cert=str(creds.ca_cert),
        cert_file=str(creds.client_cert),
        key_file=str(creds.client_key),
        connection_pool_maxsize=pool_size,
    )
    return ApiClient(config)


def new_token_api_client(
    server: str, ca_cert: Path, token: str, *, pool_size: int = 8
) -> ApiClient:
    """An ``ApiClient`` that authenticates with a bearer token (e.g. a ServiceAccount's)."""
    config = Configuration(
        host=server,
        ssl_ca_cert=str(ca_cert),
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
        connection_pool_maxsize=pool_size,
    )
    return ApiClient(config)
