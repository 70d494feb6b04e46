"""The Kubernetes API client: from a kubeconfig (explicit, `$KUBECONFIG`, `~/.kube/config`) or
the in-cluster service account, with the context's namespace as the fallback namespace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nbflow.deploy.kubernetes.changes import ApplyError

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for the cluster of a kubeconfig.

    The kubeconfig is, in order: ``kubeconfig``, ``$KUBECONFIG`` (a path list), ``~/.kube/config``,
    else the in-cluster service account. The context's namespace is kept on the client as
    ``nbflow_namespace`` (the fallback namespace of :func:`apply`). Raises :class:`ApplyError`
    when there is no configuration or it cannot be read.
    """
    import urllib3
    from kubernetes import client, config

    from nbflow import __version__

    configuration = client.Configuration()
    namespace: str | None = None
    source = _kubeconfig_source(kubeconfig)
    try:
        if source is not None and context is not None:
            names = [c.get("name") for c in config.list_kube_config_contexts(source)[0]]
            if context not in names:
                raise ApplyError(
                    f"context `{context}` is not in kubeconfig {source}",
                    f"pick one of: {', '.join(map(str, names)) or '(none)'}"
                    " (`kubectl config get-contexts`)",
                )
        if source is not None:
            config.load_kube_config(
                config_file=source,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = config.list_kube_config_contexts(source)
            active = next((c for c in contexts if c.get("name") == context), current)
            namespace = ((active or {}).get("context") or {}).get("namespace")
            where = f"kubeconfig {source}"
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            if _SA_NAMESPACE.is_file():
                namespace = _SA_NAMESPACE.read_text(encoding="utf-8").strip() or None
            where = "the in-cluster service account"
        else:
            raise ApplyError(
                "no Kubernetes configuration found (no kubeconfig, not running in a cluster)",
                "pass --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config "
                "(for example with your cloud's `get-credentials` command)",
            )
    except ApplyError:
        raise
    except Exception as exc:  # a broken kubeconfig: ConfigException, YAML, auth plugins, files
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # an exec plugin's stderr is in the message, and may hold a token
        detail = _redactor(source)(detail)
        raise ApplyError(
            f"cannot use the Kubernetes configuration {source or '(in-cluster)'}: {detail}",
            "check the file with `kubectl config view`, or pass another one with --kubeconfig",
        ) from None
    # one quick retry for a refused connection; never replay a write whose answer was lost
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, redirect=0, status=0, other=0, backoff_factor=0.1
    )
    api_client = client.ApiClient(configuration)
    api_client.user_agent = f"nbflow/{__version__}"
    api_client.nbflow_namespace = namespace
    api_client.nbflow_source = where + (f", context {context}" if context else "")
    return api_client


def _redactor(source: str | None) -> Any:
    from nbflow.deploy.redact import kubeconfig_redactor

    return kubeconfig_redactor(source)


def _kubeconfig_source(explicit: str | None) -> str | None:
    """The kubeconfig path (or ``:``-separated list) to read, None for in-cluster."""
    if explicit is not None:
        if not Path(explicit).expanduser().is_file():
            raise ApplyError(
                f"kubeconfig `{explicit}` does not exist",
                "pass the path of a kubeconfig file with --kubeconfig",
            )
        return str(Path(explicit).expanduser())
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [p for p in env.split(os.pathsep) if p]
        if not any(Path(p).expanduser().is_file() for p in paths):
            raise ApplyError(
                f"KUBECONFIG names no existing file ({env})",
                "fix KUBECONFIG or unset it to use ~/.kube/config",
            )
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None
