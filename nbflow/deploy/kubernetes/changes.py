"""What an apply did or would do to each resource (`Change`, `ApplyResult`), and the error that
stops it (`ApplyError`), worded for the user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

FIELD_MANAGER = "nbflow"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CONTENT_HASH_LABEL = "nbflow.dev/content-hash"

JSON = dict[str, Any]


class ApplyError(Exception):
    """A problem applying resources, worded for the user: a one-line message and a hint.

    ``changes`` holds what was done (or found) before the problem, so that a caller can show
    it; ``status`` is the HTTP status of the API server's answer, when there was one.
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        changes: tuple[Change, ...] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.changes = changes
        self.status = status

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message

    @property
    def cluster_unusable(self) -> bool:
        """True when the cluster can't be reached or used (no configuration, network, 401,
        403, a missing namespace or CRD); False when it refused the input (a conflict, a
        webhook, a server error)."""
        if any(c.action == "conflict" for c in self.changes):
            return False
        return self.status is None or self.status in {401, 403, 404}


@dataclass(frozen=True)
class Change:
    """What happened (or would happen) to one resource.

    ``action`` is one of: ``create``, ``new-version``, ``update``, ``unchanged``, ``conflict``
    (from :func:`diff_resources`); ``created``, ``updated``, ``unchanged`` (from :func:`apply`);
    ``would-create``, ``would-update``, ``unchanged``, ``conflict`` (from a dry run).
    ``reason`` names a conflict: ``not-managed``, ``other-manager`` or ``immutable``.
    """

    kind: str
    name: str
    namespace: str
    action: str
    uid: str | None = None
    api_version: str = ""
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class ApplyResult:
    """The changes of one apply, in apply order."""

    changes: tuple[Change, ...]
    dry_run: bool = False

    @property
    def conflicts(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == "conflict")

    @property
    def ok(self) -> bool:
        """False when a dry run found conflicts (a real apply raises instead)."""
        return not self.conflicts

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def to_dict(self) -> JSON:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
