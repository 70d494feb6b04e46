"""One request to the Kubernetes API through the client's `call_api`, and a failed one (HTTP
status, network) worded for the user as an `ApplyError` with a hint."""

from __future__ import annotations

import json
import re
from typing import Any

from nbflow.deploy.kubernetes.changes import JSON, ApplyError, Change
from nbflow.deploy.kubernetes.target import Target

# (connect, read) seconds for each request: an unreachable cluster fails fast
REQUEST_TIMEOUT = (5.0, 30.0)
MISSING_API_HINTS = {
    "pipelines.kubeflow.org": (
        "install Kubeflow Pipelines >= 2.14 in Kubernetes-native mode (pipeline store in "
        "Kubernetes), which serves Pipeline and PipelineVersion resources"
    ),
    "kubeflow.org": "install Katib (v0.19 or later), which serves Experiment resources",
}


class HTTPFailure(Exception):
    """A failed request, before it is worded for the user."""

    def __init__(
        self, status: int | None, reason: str, status_doc: JSON, network: str = ""
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.doc = status_doc
        self.network = network  # "connect" or "lost" for errors without an answer

    @property
    def message(self) -> str:
        return str(self.doc.get("message") or self.reason or "no message").strip()

    def to_error(
        self, target: Target, verb: str, api_client: Any, done: tuple[Change, ...] = ()
    ) -> ApplyError:
        server = server_url(api_client)
        retry = "apply is idempotent: re-run it to finish; what was applied stays unchanged"
        what = target.describe()
        status = self.status
        message = " ".join(self.message.split())
        if self.network == "connect":
            source = getattr(api_client, "nbflow_source", None)
            via = f" (from {source})" if source else ""
            return ApplyError(
                f"cannot reach the Kubernetes API server at {server}{via}: {self.reason}",
                "check that the cluster is up and that the kubeconfig context is the right one "
                "(`kubectl cluster-info`)",
                changes=done,
            )
        if self.network == "lost":
            return ApplyError(
                f"lost the connection to {server} during {verb} of {what}: {self.reason}",
                retry,
                changes=done,
            )
        if status == 0 or status is None:
            return ApplyError(
                f"cannot talk to the Kubernetes API server at {server}: {message}",
                "check the cluster's certificate authority and the server address in the kubeconfig",
                changes=done,
            )
        if status == 401:
            return ApplyError(
                f"the Kubernetes API server at {server} rejected the credentials (401 Unauthorized)",
                "log in again or refresh the kubeconfig's token (`kubectl auth whoami` shows who "
                "you are)",
                changes=done,
                status=status,
            )
        if status == 403:
            name = _match(r'User "([^"]*)"', message)
            user = f'user "{name}"' if name else "the current user"
            denied = _match(r"cannot (\w+) resource", message) or verb
            plural = target.plural or f"{target.kind.lower()}s"  # unknown before discovery
            resource = f"{plural}.{target.group}" if target.group else plural
            verbs = '"get"' if verb in {"read", "discover"} else '"get", "create", "patch"'
            return ApplyError(
                f"forbidden: {user} cannot {denied} {resource} in namespace `{target.namespace}` "
                f"({what})",
                f"grant a Role in namespace {target.namespace} with the rule apiGroups: "
                f'["{target.group}"], resources: ["{plural}"], verbs: [{verbs}], and bind '
                f"it to {user} with a RoleBinding; the server said: {message}",
                changes=done,
                status=status,
            )
        if status == 404:
            details = self.doc.get("details") or {}
            if details.get("kind") == "namespaces" or message.startswith("namespaces "):
                error = namespace_error(target.namespace, api_client)
                error.changes, error.status = done, status
                return error
            return ApplyError(
                f"the cluster at {server} does not serve {target.kind} ({target.api_version}): "
                f"{message}",
                MISSING_API_HINTS.get(target.group, f"install the operator for {target.kind}"),
                changes=done,
                status=status,
            )
        if status == 409:
            return ApplyError(
                f"{what} has fields owned by another field manager: {message}",
                "re-run with --force-conflicts to take those fields over",
                changes=done,
                status=status,
            )
        if status in {400, 422} and "admission webhook" in message:
            if "immutable" in message:
                hint = (
                    "a PipelineVersion never changes: rebuild so that the changed input gets a "
                    "new version name"
                )
            elif "pipelineName" in message:
                hint = "apply the version's Pipeline first (the files of `nbflow build` hold both)"
            else:
                hint = "the cluster's admission webhook said why; fix the input and rebuild"
            return ApplyError(
                f"the cluster refused {what}: {message}", hint, changes=done, status=status
            )
        if status in {400, 415, 422}:
            return ApplyError(
                f"the API server refused {what} ({status}): {message}",
                "check the generated resource (`nbflow build`) against the installed CRD version",
                changes=done,
                status=status,
            )
        return ApplyError(
            f"the Kubernetes API server failed ({status} {self.reason}) during {verb} of {what}: "
            f"{message}",
            retry,
            changes=done,
            status=status,
        )


def namespace_error(namespace: str, api_client: Any) -> ApplyError:
    return ApplyError(
        f"namespace `{namespace}` does not exist on the cluster at {server_url(api_client)}",
        f"create it (`kubectl create namespace {namespace}`) or choose another one with "
        "--namespace or `namespace:` in nbflow.yaml; without either, nbflow uses the namespace "
        "of the kubeconfig context",
        status=404,
    )


def _match(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def server_url(api_client: Any) -> str:
    return str(getattr(getattr(api_client, "configuration", None), "host", "") or "(unknown)")


def request(
    api_client: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: JSON | None = None,
    content_type: str | None = None,
) -> tuple[Any, int]:
    """One API call: (decoded JSON, HTTP status); failures become :class:`HTTPFailure`."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        data, status, _ = api_client.call_api(
            path,
            method,
            query_params=query or [],
            header_params=headers,
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=False,
            _preload_content=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        doc: JSON = {}
        try:
            parsed = json.loads(exc.body) if exc.body else {}
            doc = parsed if isinstance(parsed, dict) else {}
        except (TypeError, ValueError):
            doc = {"message": str(exc.body)[:200]} if exc.body else {}
        raise HTTPFailure(exc.status, str(exc.reason or ""), doc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        kind = "connect" if _is_connect_error(exc) else "lost"
        raise HTTPFailure(None, network_reason(exc), {}, network=kind) from None
    return data, int(status)


def _is_connect_error(exc: BaseException) -> bool:
    import urllib3

    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return isinstance(
        reason,
        urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.ConnectTimeoutError
        | urllib3.exceptions.NameResolutionError
        | ConnectionRefusedError,
    )


def network_reason(exc: BaseException) -> str:
    import urllib3

    reason: BaseException | None = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    text = str(reason)
    if isinstance(reason, urllib3.exceptions.ProtocolError) and reason.args:
        text = " ".join(str(a) for a in reason.args)
    # "<urllib3.connection.HTTPConnection object at 0x..>: Failed to ...: [Errno 111] Connection
    # refused" -> "[Errno 111] Connection refused"
    text = re.sub(r"<[^>]*>:?\s*", "", text).strip()
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
        if text.count(")") > text.count("("):
            text = text.rstrip(")")
    return text or type(reason).__name__
