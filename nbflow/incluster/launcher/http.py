"""JSON over HTTP(S): a bearer token re-read on each request, bounded retries, one-line errors."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ApiError, LaunchError, Log, log_stderr

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(body: bytes) -> str:
    """The message of an error body: grpc-gateway's, KFP's HTTP handlers' or a Kubernetes Status."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return one_line(text) or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error_message", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return one_line(value)
    return one_line(text)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class HttpClient:
    """JSON over HTTP(S) with a bearer token re-read on each request and bounded retries.

    Retries connection errors, timeouts and HTTP 429/500/502/503/504 (honouring Retry-After),
    with exponential backoff; never retries another 4xx.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "KFP API",
        token_path: str | None = None,
        ca_cert: str | None = None,
        timeout: float = 30.0,
        retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        log: Log = log_stderr,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise LaunchError(f"{name} URL `{base_url}` is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.token_path = token_path
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._log = log
        self._sleep = sleep
        context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=ca_cert)
            except OSError as error:
                raise LaunchError(
                    f"cannot read CA certificate {ca_cert}: {_reason(error)}"
                ) from None
            except ssl.SSLError as error:
                raise LaunchError(f"CA certificate {ca_cert} is not valid: {error}") from None
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def _token(self) -> str | None:
        # Projected service-account tokens rotate: read the file on every request.
        if not self.token_path:
            return None
        try:
            with open(self.token_path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LaunchError(
                f"cannot read token file {self.token_path}: {_reason(error)}"
            ) from None
        return token or None

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.max_backoff)
        return min(self.backoff * (2**attempt), self.max_backoff)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> bytes:
        """Sends one request (retried if allowed) and returns the body of its 2xx answer."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        if data is None and method == "POST":
            data = b""
        attempts = self.retries + 1 if retry else 1
        what = f"{method} {path}"
        for attempt in range(attempts):
            headers = {"Accept": "application/json, text/plain", "User-Agent": "nbflow-launcher"}
            if data:
                headers["Content-Type"] = "application/json"
            token = self._token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            last = attempt + 1 >= attempts
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    payload: bytes = response.read()
                    return payload
            except urllib.error.HTTPError as error:
                try:
                    text = _error_text(error.read())
                except (OSError, http.client.HTTPException):
                    text = "(unreadable body)"
                if error.code in RETRY_STATUSES and not last:
                    delay = self._delay(attempt, error.headers.get("Retry-After"))
                    self._log(
                        f"{self.name} answered HTTP {error.code} to {what}; "
                        f"retry {attempt + 1} of {self.retries} in {delay:.1f} s"
                    )
                    self._sleep(delay)
                    continue
                retried = error.code in RETRY_STATUSES and attempts > 1
                tried = f" after {attempts} attempts" if retried else ""
                raise ApiError(
                    f"{self.name} answered HTTP {error.code} to {what}{tried}: {text}", error.code
                ) from None
            except (OSError, http.client.HTTPException) as error:
                if isinstance(error, ssl.SSLError) or (
                    isinstance(error, urllib.error.URLError)
                    and isinstance(error.reason, ssl.SSLError)
                ):
                    raise LaunchError(
                        f"TLS error talking to {self.name} at {self.base_url}: {_reason(error)}"
                    ) from None
                if not last:
                    delay = self._delay(attempt)
                    self._log(
                        f"{self.name} at {self.base_url} failed ({_reason(error)}) on {what}; "
                        f"retry {attempt + 1} of {self.retries} in {delay:.1f} s"
                    )
                    self._sleep(delay)
                    continue
                raise LaunchError(
                    f"cannot reach {self.name} at {self.base_url} ({_reason(error)}) "
                    f"on {what} after {attempts} attempts"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Like `request`, for an answer that is a JSON object."""
        payload = self.request(method, path, **kwargs)
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            raise LaunchError(
                f"{self.name} answered {method} {path} with something that is not JSON: "
                f"{one_line(payload.decode('utf-8', 'replace'), 120)}"
            ) from None
        if not isinstance(data, dict):
            raise LaunchError(
                f"{self.name} answered {method} {path} with JSON that is not an object"
            )
        return data
