"""Credentials out of logs: the secret values of a kubeconfig, and a redactor for text that
libraries print (the kubernetes client logs an exec plugin's stderr, which may hold a token).

- :func:`kubeconfig_secrets` reads a kubeconfig as YAML (JSON and flow style are YAML too) and
  returns every credential in it: tokens, client keys and certificates, passwords, the values
  of an exec plugin's ``env``, an auth provider's config secrets; a multi-line value also
  line by line, as a log shows it. The deploy action masks each with ``::add-mask::``.
- :class:`Redactor` replaces known values and anything shaped like a credential (a bearer
  token, a JWT, ``token: ...``) with ``***``; :func:`redacted_library_logs` routes the root
  logger (the kubernetes client and urllib3 log there) through it while a command runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "Redactor",
    "kubeconfig_redactor",
    "kubeconfig_secrets",
    "read_kubeconfig_secrets",
    "redacted_library_logs",
]

REDACTED = "***"

# credential fields of a kubeconfig's `user` (and of an auth provider's `config`)
_SECRET_FIELDS = frozenset(
    {
        "token",
        "client-key-data",
        "client-certificate-data",
        "password",
        "id-token",
        "refresh-token",
        "access-token",
        "client-secret",
        "secret",
        "apikey",
        "api-key",
    }
)
_MIN_SECRET = 4  # shorter values (`|`, `""`, `yes`) would blank out ordinary words

_PATTERNS = (
    # Authorization headers and their like: keep the scheme, hide the credential
    re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # JSON Web Tokens, wherever they appear (service account and OIDC tokens are JWTs)
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    # `token: x`, `"access_token": "x"`, `password=x`
    re.compile(
        r"(?i)([\"']?\b(?:[a-z]+[-_])?(?:token|password|secret|client-key-data)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',}]{4,}"
    ),
)


def kubeconfig_secrets(doc: Any) -> list[str]:
    """Every credential of a parsed kubeconfig, longest first; a multi-line value also as its
    lines. Anything that is not a kubeconfig gives what it can (nothing, at worst)."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value).strip()
            if len(text) >= _MIN_SECRET:
                found.add(text)
                found.update(
                    ln.strip() for ln in text.splitlines() if len(ln.strip()) >= _MIN_SECRET
                )

    def walk_fields(mapping: Any) -> None:
        if isinstance(mapping, dict):
            for key, value in mapping.items():
                if str(key).lower() in _SECRET_FIELDS:
                    add(value)

    users = doc.get("users") if isinstance(doc, dict) else None
    for entry in users if isinstance(users, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        walk_fields(user)
        provider = user.get("auth-provider")
        config = provider.get("config") if isinstance(provider, dict) else None
        if isinstance(config, dict):  # keys differ per provider: anything secret-named
            for key, value in config.items():
                if re.search(r"(?i)token|secret|password|key", str(key)):
                    add(value)
        exec_ = user.get("exec")
        if isinstance(exec_, dict):
            for env in exec_.get("env") or []:
                if isinstance(env, dict):
                    add(env.get("value"))
    return sorted(found, key=lambda s: (-len(s), s))


def _parse(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


_SECRET_LINE = re.compile(
    r"(?i)[\"']?([a-z-]*(?:token|key-data|certificate-data|password|secret))[\"']?\s*:\s*"
    r"[\"']?([^\s\"',}]+)"
)


def _secrets_of_text(text: str) -> list[str]:
    doc = _parse(text)
    if isinstance(doc, dict):
        return kubeconfig_secrets(doc)
    # not YAML (a broken paste): still hide whatever looks like `token: value`
    values = {m.group(2) for m in _SECRET_LINE.finditer(text) if len(m.group(2)) >= _MIN_SECRET}
    return sorted(values, key=lambda s: (-len(s), s))


def read_kubeconfig_secrets(text_or_paths: str | Iterable[Path]) -> list[str]:
    """The secrets of a kubeconfig given as text, or of the files of a path list."""
    if isinstance(text_or_paths, str):
        return _secrets_of_text(text_or_paths)
    found: list[str] = []
    for path in text_or_paths:
        try:
            found += _secrets_of_text(Path(path).expanduser().read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return sorted(set(found), key=lambda s: (-len(s), s))


def kubeconfig_redactor(source: str | None) -> Redactor:
    """A redactor of every secret of the kubeconfig files of `source`, a path or a
    `KUBECONFIG`-style list of paths (none: nothing to hide)."""
    paths = [Path(p) for p in (source or "").split(os.pathsep) if p]
    return Redactor(read_kubeconfig_secrets(paths))


class Redactor:
    """Replaces known secret values, and text shaped like a credential, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        merged = {*self.secrets, *(s for s in secrets if len(s) >= _MIN_SECRET)}
        self.secrets = sorted(merged, key=lambda s: (-len(s), s))  # a value before its parts

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _PATTERNS[1].sub(REDACTED, text)
        return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) through a :class:`Redactor`."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redactor(message), None
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


@contextlib.contextmanager
def redacted_library_logs(redactor: Redactor, stream: TextIO | None = None) -> Iterator[Redactor]:
    """While the block runs, library log records (warnings and worse, as Python prints them
    when nobody configured logging) go to ``stream`` through ``redactor``, never raw."""
    from nbflow.escape import terminal_lines

    class _Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return terminal_lines(super().format(record))

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(_Formatter("nbflow: %(name)s: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield redactor
    finally:
        root.removeHandler(handler)
        handler.close()
