"""Apply generated resources to a Kubernetes cluster with server-side apply.

The resources are those ``nbflow build`` writes: a KFP ``Pipeline``, then a ``PipelineVersion``
(``pipelines.kubeflow.org/v2beta1``), then optionally a Katib ``Experiment``
(``kubeflow.org/v1beta1``). Rules:

- every write is a server-side apply (``application/apply-patch+yaml``, field manager
  ``nbflow``), Pipeline before PipelineVersion before anything else;
- a PipelineVersion or an Experiment never changes in place: one with the same name and the same
  spec (and content-hash label) is left alone ("unchanged"); one with a different spec is a
  conflict (a changed input gets a new, content-derived name, so only a hand edit gets here);
- nothing nbflow did not create is touched: an object without the label
  ``app.kubernetes.io/managed-by=nbflow``, or whose spec another field manager owns, is a
  conflict unless ``force_conflicts`` is given;
- nothing is written when one of the changes is a conflict; a re-run after a failure half way
  finishes the job, because what was applied already is "unchanged".

The library never exits the process: problems are :class:`ApplyError` with a one-line message
and a hint. ``kubernetes`` and ``urllib3`` are imported inside the functions that use them.

The modules, one concern each:

- `changes`: what an apply did or would do (`Change`, `ApplyResult`) and `ApplyError`
- `config`: the API client of a kubeconfig or of the in-cluster service account
- `http`: one API request, and a failed one worded for the user
- `target`: one resource to apply, its namespace and REST path resolved
- `decide`: what to do with one resource, given the live object (the rules above)
- `ssa`: reading the cluster, then `diff_resources` (read only) or `apply` (server-side apply)
"""

from nbflow.deploy.kubernetes.changes import FIELD_MANAGER, ApplyError, ApplyResult, Change
from nbflow.deploy.kubernetes.config import load_api_client
from nbflow.deploy.kubernetes.ssa import apply, diff_resources

__all__ = [
    "FIELD_MANAGER",
    "ApplyError",
    "ApplyResult",
    "Change",
    "apply",
    "diff_resources",
    "load_api_client",
]
