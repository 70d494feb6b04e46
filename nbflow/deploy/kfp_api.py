"""The KFP REST API path of `nbflow apply` (``deploy.kfp: api``): upload a build's Pipeline and
PipelineVersion through the KFP v2beta1 endpoints, for clusters whose pipeline store is not in
Kubernetes.

Errors are :class:`nbflow.deploy.kubernetes.ApplyError`, with the changes made before the failure and the
HTTP status, so that :func:`nbflow.deploy.gitops.exit_code` can map them.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from nbflow.deploy.kubernetes import ApplyError, Change

if TYPE_CHECKING:
    from nbflow.generate.build import BuildResult

# the KFP REST API: (connect, read) seconds per request, the bearer token's variable, and the
# variable by which the operator names the host that token is for
KFP_TIMEOUT = (5.0, 60.0)
KFP_TOKEN_ENV = "NBFLOW_KFP_TOKEN"
KFP_HOST_ENV = "NBFLOW_KFP_HOST"


def url_problem(url: str) -> str | None:
    """Why `url` can't be a KFP API URL (None when it can): http or https, with a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    if parts.username is not None or parts.password is not None:
        return f"must not carry credentials (set {KFP_TOKEN_ENV})"
    return None


def _loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(url: str, *, operator_named: bool, shown: str) -> str | None:
    """The token of ``$NBFLOW_KFP_TOKEN`` for the KFP API at `url`, or None when none is set.

    The token is the operator's, and goes only where the operator says: to a host given by
    ``--kfp-host`` or ``$NBFLOW_KFP_HOST`` (`operator_named`), never to one that only a
    manifest names (a pull request could point it anywhere), and over https, or plain http to
    a loopback address only (a port-forward). Raises :class:`nbflow.errors.UsageError`
    otherwise, before anything is sent."""
    from nbflow.errors import UsageError

    token = os.environ.get(KFP_TOKEN_ENV)
    if not token:
        return None
    if not operator_named:
        raise UsageError(
            f"{KFP_TOKEN_ENV} is set, but the KFP API URL of {shown} ({url}) comes from its "
            "`deploy.host` alone: nbflow sends the token only to a host the operator names\n"
            f"hint: pass --kfp-host {url} (or set {KFP_HOST_ENV}) if that host is yours"
        )
    if url.lower().startswith("http://") and not _loopback(url):
        raise UsageError(
            f"refusing to send {KFP_TOKEN_ENV} over plain http to {url}\n"
            "hint: use the API's https URL; plain http carries a token only to a loopback "
            "address (`kubectl port-forward -n kubeflow svc/ml-pipeline 8888`, then "
            "http://localhost:8888)"
        )
    return token


def upload_to_kfp(
    built: BuildResult,
    *,
    host: str,
    namespace: str | None,
    step: str = "apply",
    token: str | None = None,
) -> list[Change]:
    """Upload a build's pipeline through the KFP v2beta1 REST API.

    The Pipeline is created (empty) when no pipeline of that name exists in the namespace, then
    the version named ``<pipeline>-<version>`` is uploaded from ``pipeline.yaml``; a version of
    that name that exists already is left alone (its name is derived from its content).
    ``step`` is ``apply`` (actions ``created``, ``unchanged``), ``dry-run`` (``would-create``,
    ``unchanged``) or ``diff`` (``create``, ``new-version``, ``unchanged``, as
    :func:`nbflow.deploy.kubernetes.diff_resources` names them); only ``apply`` writes.

    Endpoints: ``GET /apis/v2beta1/pipelines/names/{name}``, ``POST /apis/v2beta1/pipelines``,
    ``GET /apis/v2beta1/pipelines/{id}/versions``, ``POST /apis/v2beta1/pipelines/upload_version``.
    ``token``, when given, is sent as a bearer token: see :func:`bearer_token` for which
    host may have it.

    This uses ``kfp_server_api``, the generated client that ``kfp.Client`` wraps, directly:
    ``kfp.Client`` prints links on stdout (which would break ``--json``), retries its health
    check with 5 s sleeps and logged tracebacks, and reads ``~/.config/kfp/context.json``.
    """
    changes: list[Change] = []
    try:
        return _upload(
            built, host=host, namespace=namespace, step=step, token=token, changes=changes
        )
    except ApplyError as exc:  # say what was done before the failure
        raise ApplyError(exc.message, exc.hint, changes=tuple(changes), status=exc.status) from None


def _upload(
    built: BuildResult,
    *,
    host: str,
    namespace: str | None,
    step: str,
    token: str | None,
    changes: list[Change],
) -> list[Change]:
    import kfp_server_api

    api = _KfpApi(kfp_server_api, host, token)
    pipeline_name, version_name = built.pipeline, built.version_name
    description = f"nbflow {built.snapshot.label}"

    def note(kind: str, name: str, action: str, uid: str | None) -> None:
        changes.append(
            Change(kind, name, namespace or "", action, uid, "", None, f"KFP API {api.host}")
        )

    new = {"apply": "created", "dry-run": "would-create", "diff": "create"}[step]
    pipeline = api.call(
        "read",
        f"Pipeline `{pipeline_name}`",
        lambda: api.pipelines.pipeline_service_get_pipeline_by_name(
            pipeline_name, namespace=namespace, _request_timeout=KFP_TIMEOUT
        ),
        missing_ok=True,
    )
    if pipeline is not None:
        note("Pipeline", pipeline_name, "unchanged", pipeline.pipeline_id)
        existing = api.find_version(pipeline.pipeline_id, version_name)
        if existing is not None:
            note("PipelineVersion", version_name, "unchanged", existing.pipeline_version_id)
            return changes
        if step == "diff":
            new = "new-version"
    elif step == "apply":
        body = kfp_server_api.V2beta1Pipeline(
            name=pipeline_name,
            display_name=pipeline_name,
            description=description,
            namespace=namespace,
        )
        pipeline = api.call(
            "create",
            f"Pipeline `{pipeline_name}`",
            lambda: api.pipelines.pipeline_service_create_pipeline(
                body, _request_timeout=KFP_TIMEOUT
            ),
        )
        note("Pipeline", pipeline_name, new, pipeline.pipeline_id)
    else:
        note("Pipeline", pipeline_name, new, None)
    if step != "apply":
        note("PipelineVersion", version_name, new, None)
        return changes
    assert pipeline is not None
    version = api.call(
        "upload",
        f"PipelineVersion `{version_name}`",
        lambda: api.uploads.upload_pipeline_version(
            str(built.folder / "pipeline.yaml"),
            name=version_name,
            display_name=version_name,
            pipelineid=pipeline.pipeline_id,
            description=description,
            _request_timeout=KFP_TIMEOUT,
        ),
    )
    note("PipelineVersion", version_name, new, version.pipeline_version_id)
    return changes


class _KfpApi:
    """The two generated services, with errors worded as :class:`ApplyError`."""

    def __init__(self, kfp_server_api: Any, host: str, token: str | None) -> None:
        import urllib3

        from nbflow import __version__

        self.host = host.rstrip("/")
        config = kfp_server_api.Configuration(host=self.host)
        # one quick retry for a refused connection; never replay a write whose answer was lost;
        # never follow a redirect (the token would go where the answer points)
        config.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        if token:
            config.api_key["authorization"] = token
            config.api_key_prefix["authorization"] = "Bearer"
        client = kfp_server_api.ApiClient(config)
        client.user_agent = f"nbflow/{__version__}"
        self.pipelines = kfp_server_api.PipelineServiceApi(client)
        self.uploads = kfp_server_api.PipelineUploadServiceApi(client)

    def find_version(self, pipeline_id: str, name: str) -> Any:
        """The version of that name, or None; the filter narrows the list, the name decides."""
        query = json.dumps(
            {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
        )
        token = ""
        for _ in range(100):  # pages; a filtered list has one
            page = self.call(
                "read",
                f"the versions of pipeline {pipeline_id}",
                lambda token=token: self.pipelines.pipeline_service_list_pipeline_versions(
                    pipeline_id,
                    filter=query,
                    page_size=100,
                    page_token=token,
                    _request_timeout=KFP_TIMEOUT,
                ),
            )
            for version in page.pipeline_versions or []:
                if name in (version.name, version.display_name):
                    return version
            token = page.next_page_token or ""
            if not token:
                return None
        return None

    def call(self, verb: str, what: str, request: Any, *, missing_ok: bool = False) -> Any:
        import urllib3
        from kfp_server_api.exceptions import ApiException

        try:
            return request()
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise self._error(verb, what, exc.status, str(exc.reason or ""), exc.body) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            from nbflow.deploy.kubernetes.http import network_reason

            raise ApplyError(
                f"cannot reach the KFP API at {self.host}: {network_reason(exc)}",
                "check --kfp-host or `deploy.host` in nbflow.yaml; from outside the cluster, "
                "`kubectl port-forward -n kubeflow svc/ml-pipeline 8888` and use "
                "http://localhost:8888",
            ) from None

    def _error(self, verb: str, what: str, status: int, reason: str, body: Any) -> ApplyError:
        message = reason
        with contextlib.suppress(TypeError, ValueError):
            doc = json.loads(body) if body else {}
            if isinstance(doc, dict) and doc.get("message"):
                message = str(doc["message"])
        message = " ".join(message.split())
        if status == 401:
            return ApplyError(
                f"the KFP API at {self.host} rejected the credentials (401): {message}",
                f"set {KFP_TOKEN_ENV} to a bearer token the KFP API accepts (it is sent only to "
                f"the host of --kfp-host or {KFP_HOST_ENV})",
                status=status,
            )
        if status == 403:
            return ApplyError(
                f"forbidden: the KFP API at {self.host} refused to {verb} {what} ({message})",
                "in multi-user KFP, the identity needs edit rights in the profile's namespace "
                "(a Kubeflow Profile contributor); set `deploy.namespace`",
                status=status,
            )
        return ApplyError(
            f"the KFP API at {self.host} refused to {verb} {what} ({status}): {message}",
            "apply is idempotent: fix the cause and re-run it",
            status=status,
        )


__all__ = [
    "KFP_HOST_ENV",
    "KFP_TIMEOUT",
    "KFP_TOKEN_ENV",
    "bearer_token",
    "upload_to_kfp",
    "url_problem",
]
