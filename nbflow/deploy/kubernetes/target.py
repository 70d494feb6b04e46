"""One resource to apply: its body with the namespace resolved, and where it lives in the API."""

from __future__ import annotations

from dataclasses import dataclass, field

from nbflow.deploy.kubernetes.changes import JSON, Change

# kinds whose spec never changes after creation, by (group, kind)
IMMUTABLE_KINDS = frozenset(
    {("pipelines.kubeflow.org", "PipelineVersion"), ("kubeflow.org", "Experiment")}
)


@dataclass
class Target:
    """One resource to apply, with its namespace resolved and its REST path found."""

    body: JSON
    group: str
    version: str
    kind: str
    name: str
    namespace: str
    plural: str = ""
    live: JSON | None = None
    change: Change | None = field(default=None, repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def immutable(self) -> bool:
        return (self.group, self.kind) in IMMUTABLE_KINDS

    @property
    def path(self) -> str:
        return (
            f"/apis/{self.group}/{self.version}/namespaces/{self.namespace}/"
            f"{self.plural}/{self.name}"
        )

    def describe(self) -> str:
        return f"{self.kind} `{self.name}` in namespace `{self.namespace}`"
