"""Where the tools find the cluster, and how they talk to it.

Daemons: ``--kubeconfig``, else ``$KUBECONFIG``, else the in-cluster service account (as
controller-runtime). ``kubectl bandwidth`` (``home=True``): ``--kubeconfig``, else
``$KUBECONFIG``, else ``~/.kube/config`` if it exists, else in-cluster (as kubectl). Every way
this fails is a ``NoClusterConfig`` whose message says what was looked for and how to point at
a cluster.

The connection's own policies are set here, once for every tool:

- urllib3 retries nothing by itself but a 429/503 that carries ``Retry-After`` on an idempotent
  request (it waits as asked, quietly). Connection errors are raised at once: the callers
  retry with back-off and log it (``kubeio.retry``, the watch caches, the work queue), so a
  broken connection is not retried three times over with a warning each time.
- With ``insecure-skip-tls-verify: true`` in the kubeconfig, urllib3's per-request
  ``InsecureRequestWarning`` is silenced; the daemons say it once at start-up
  (:func:`log_tls_verification`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import structlog
import urllib3
from kubernetes import client, config
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME

HOME_KUBECONFIG = Path("~/.kube/config")
INSECURE_SETTING = "insecure-skip-tls-verify"
POINT_AT_A_CLUSTER = "pass --kubeconfig FILE or set KUBECONFIG"

# Status retries only, for the statuses that carry Retry-After; never raised as MaxRetryError
# for a status: the last answer is returned and reported by its code.
RETRIES = urllib3.Retry(
    total=3, connect=0, read=0, other=0, raise_on_status=False, respect_retry_after_header=True
)


class NoClusterConfig(RuntimeError):
    pass


def find_kubeconfig(flag: str | None, *, home: bool = False) -> tuple[str | None, str]:
    """The kubeconfig to load and where its name came from (``--kubeconfig``, ``KUBECONFIG``,
    ``~/.kube/config``); ``(None, "")`` means the in-cluster service account."""
    if flag:
        return flag, "--kubeconfig"
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"], "KUBECONFIG"
    default = HOME_KUBECONFIG.expanduser()
    if home and default.exists():
        return str(default), str(HOME_KUBECONFIG)
    return None, ""


def load_client_configuration(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    pool_size: int = 32,
    home: bool = False,
) -> client.Configuration:
    """The client configuration for the cluster ``find_kubeconfig`` names."""
    configuration = client.Configuration()
    path, source = find_kubeconfig(kubeconfig, home=home)
    try:
        if path:
            _check_exists(path, source)
            config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
        else:
            _check_in_cluster(home)
            config.load_incluster_config(client_configuration=configuration)
    except (config.ConfigException, OSError) as error:
        where = f"kubeconfig {path}" if path else "the in-cluster service account"
        raise NoClusterConfig(f"cannot load cluster credentials from {where}: {error}") from error
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = RETRIES
    if not configuration.verify_ssl:
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    return configuration


def _check_exists(path: str, source: str) -> None:
    # KUBECONFIG may list several files, merged; the missing ones are skipped, as kubectl does.
    paths = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).expanduser().exists() for p in paths):
        given = f"{source}={path}" if source == "KUBECONFIG" else f"{source} {path}"
        raise NoClusterConfig(f"kubeconfig not found: {given} does not exist")


def _check_in_cluster(home: bool) -> None:
    if os.environ.get(SERVICE_HOST_ENV_NAME):
        return
    looked = "--kubeconfig, KUBECONFIG or ~/.kube/config" if home else "--kubeconfig or KUBECONFIG"
    raise NoClusterConfig(
        f"no kubeconfig found ({looked}) and not running in a cluster "
        f"({SERVICE_HOST_ENV_NAME} is not set): {POINT_AT_A_CLUSTER}"
    )


def log_tls_verification(configuration: client.Configuration, component: str) -> None:
    """Once, at start-up: a warning when the kubeconfig turned certificate checks off."""
    if configuration.verify_ssl:
        return
    structlog.get_logger(component).warning(
        "tls_verification_off",
        server=configuration.host,
        kubeconfig_setting=f"{INSECURE_SETTING}: true",
        detail="the apiserver's certificate is not checked; set certificate-authority instead",
    )
