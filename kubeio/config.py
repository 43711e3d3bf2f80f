"""Where the daemons find the cluster: ``--kubeconfig``, else ``KUBECONFIG``, else in-cluster."""

from __future__ import annotations

import os

from kubernetes import client, config


class NoClusterConfig(RuntimeError):
    pass


def load_client_configuration(
    kubeconfig: str | None = None, *, context: str | None = None, pool_size: int = 32
) -> client.Configuration:
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path:
            config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (config.ConfigException, OSError) as error:
        where = path or "the in-cluster service account"
        raise NoClusterConfig(f"cannot load cluster credentials from {where}: {error}") from error
    configuration.connection_pool_maxsize = pool_size
    return configuration
