"""nbflow.deploy.kubernetes against a loopback Kubernetes API server (tests/support/k8s_server.py).

The resources are compiled by the real kfp compiler in Kubernetes-native mode; the client is
the official ``kubernetes`` client, configured from a kubeconfig file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbflow.deploy.kubernetes import (
    ApplyError,
    ApplyResult,
    apply,
    diff_resources,
    load_api_client,
)
from nbflow.deploy.kubernetes.http import REQUEST_TIMEOUT
from tests.support.k8s_server import (
    EXPERIMENT,
    KFP_TYPES,
    PIPELINE,
    PIPELINE_VERSION,
    AdmissionRequest,
    K8sServer,
    iter_documents,
)

NS = "team-a"
JSON = dict[str, Any]


# --- resources compiled by kfp -----------------------------------------------------------------


def _compile(tmp: Path, offset: int) -> list[JSON]:
    """Pipeline + PipelineVersion of a one-step pipeline; ``offset`` changes its code."""
    from kfp import compiler
    from kfp.compiler.compiler_utils import KubernetesManifestOptions

    # a real file, since kfp reads the source; compiled without this module's `annotations`
    # future, since kfp needs real types
    source = (
        "from kfp import dsl\n\n\n"
        "@dsl.component(base_image='python:3.11')\n"
        f"def add(a: int, b: int) -> int:\n    return a + b + {offset}\n\n\n"
        "@dsl.pipeline(name='tiny')\n"
        "def tiny(x: int = 1):\n    add(a=x, b=2)\n"
    )
    module = tmp / f"step_{offset}.py"
    module.write_text(source, encoding="utf-8")
    namespace: dict[str, Any] = {}
    exec(compile(source, str(module), "exec", dont_inherit=True), namespace)
    tiny = namespace["tiny"]

    ir = tmp / f"ir_{offset}.yaml"
    compiler.Compiler().compile(tiny, str(ir))
    digest = hashlib.sha256(ir.read_bytes()).hexdigest()[:10]
    out = tmp / f"k8s_{offset}.yaml"
    compiler.Compiler().compile(
        tiny,
        str(out),
        kubernetes_manifest_format=True,
        kubernetes_manifest_options=KubernetesManifestOptions(
            pipeline_name="tiny",
            pipeline_version_name=f"tiny-{digest}",
            namespace=NS,
            include_pipeline_manifest=True,
        ),
    )
    docs = list(iter_documents(out.read_text(encoding="utf-8")))
    for doc in docs:
        doc["metadata"]["labels"] = {
            "app.kubernetes.io/managed-by": "nbflow",
            "nbflow.dev/pipeline": "tiny",
            "nbflow.dev/snapshot": "0123abc",
            "nbflow.dev/content-hash": digest,
        }
    return docs


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[JSON], list[JSON]]:
    tmp = tmp_path_factory.mktemp("kfp")
    return _compile(tmp, 0), _compile(tmp, 1)


@pytest.fixture
def v1(builds: tuple[list[JSON], list[JSON]]) -> list[JSON]:
    return copy.deepcopy(builds[0])


@pytest.fixture
def v2(builds: tuple[list[JSON], list[JSON]]) -> list[JSON]:
    return copy.deepcopy(builds[1])


def _experiment(max_trials: int = 6) -> JSON:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {
            "name": "tiny-tune-1a2b3c",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "nbflow", "nbflow.dev/pipeline": "tiny"},
        },
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": "random"},
            "maxTrialCount": max_trials,
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.001", "max": "0.1"},
                }
            ],
        },
    }


# --- the server and the client -----------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[K8sServer]:
    with K8sServer(namespaces=["default", NS]) as srv:
        yield srv


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    clients: list[Any] = []

    def make(srv: K8sServer, **kwargs: Any) -> Any:
        path = srv.write_kubeconfig(tmp_path / f"kubeconfig-{len(clients)}", **kwargs)
        client = load_api_client(kubeconfig=str(path))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.rest_client.pool_manager.clear()
        client.close()


@pytest.fixture
def client(server: K8sServer, make_client: Callable[..., Any]) -> Any:
    return make_client(server, namespace=NS)


def _actions(result: ApplyResult | list[Any]) -> list[tuple[str, str, str]]:
    return [(c.kind, c.name, c.action) for c in result]


# --- apply -------------------------------------------------------------------------------------


def test_first_apply_creates_pipeline_then_version(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    result = apply(v1, namespace=None, api_client=client)

    version = v1[1]["metadata"]["name"]
    assert _actions(result) == [
        ("Pipeline", "tiny", "created"),
        ("PipelineVersion", version, "created"),
    ]
    writes = server.writes()
    assert [(w.method, w.resource, w.name) for w in writes] == [
        ("PATCH", "pipelines", "tiny"),
        ("PATCH", "pipelineversions", version),
    ]
    for write in writes:
        assert write.content_type == "application/apply-patch+yaml"
        assert write.query == {"fieldManager": "nbflow"}  # no force unless asked
    pipeline = server.get(PIPELINE, NS, "tiny")
    stored = server.get(PIPELINE_VERSION, NS, version)
    assert pipeline is not None and stored is not None
    for obj, change in zip((pipeline, stored), result.changes, strict=True):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "nbflow"
        assert (
            labels["nbflow.dev/content-hash"]
            == v1[0]["metadata"]["labels"]["nbflow.dev/content-hash"]
        )
        assert [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]] == [
            ("nbflow", "Apply")
        ]
        assert change.uid == obj["metadata"]["uid"]
        assert change.namespace == NS
    assert stored["spec"]["pipelineSpec"]["pipelineInfo"]["name"] == "tiny"
    # KFP's webhook made the Pipeline the owner of its version
    assert stored["metadata"]["ownerReferences"][0]["uid"] == pipeline["metadata"]["uid"]
    assert json.loads(result.to_json())["changes"][1]["action"] == "created"


def test_second_apply_is_unchanged_and_writes_nothing(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    apply(v1, namespace=None, api_client=client)
    before = server.get(PIPELINE_VERSION, NS, v1[1]["metadata"]["name"])
    server.clear_log()

    result = apply(v1, namespace=None, api_client=client)

    assert [c.action for c in result] == ["unchanged", "unchanged"]
    assert server.writes() == []
    assert server.get(PIPELINE_VERSION, NS, v1[1]["metadata"]["name"]) == before
    assert result.changes[1].uid == before["metadata"]["uid"]  # type: ignore[index]


def test_the_same_version_compiled_by_another_kfp_release_is_unchanged(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    """A kfp patch release changes the IR's banner and the kfp its executor installs, not the
    version (issue 14, item 9): applying its build is a no-op, not a conflict."""
    apply(v1, namespace=None, api_client=client)
    server.clear_log()
    rebuilt = json.loads(re.sub(r"kfp==[0-9][^'\\\" ]*", "kfp==2.99.0", json.dumps(v1)))
    spec = rebuilt[1]["spec"]["pipelineSpec"]
    assert "kfp==2.99.0" in json.dumps(spec)
    spec["sdkVersion"] = "kfp-2.99.0"

    result = apply(rebuilt, namespace=None, api_client=client)

    assert [c.action for c in result] == ["unchanged", "unchanged"]
    assert server.writes() == []


def test_changed_pipeline_adds_a_version_and_keeps_the_old_one(
    server: K8sServer, client: Any, v1: list[JSON], v2: list[JSON]
) -> None:
    apply(v1, namespace=None, api_client=client)
    old, new = v1[1]["metadata"]["name"], v2[1]["metadata"]["name"]
    assert old != new  # the version name carries the content hash
    server.clear_log()

    changes = diff_resources(v2, namespace=None, api_client=client)
    assert _actions(changes) == [
        ("Pipeline", "tiny", "update"),
        ("PipelineVersion", new, "new-version"),
    ]

    result = apply(v2, namespace=None, api_client=client)

    assert _actions(result) == [
        ("Pipeline", "tiny", "updated"),
        ("PipelineVersion", new, "created"),
    ]
    names = [o["metadata"]["name"] for o in server.objects(PIPELINE_VERSION, NS)]
    assert sorted(names) == sorted([old, new])
    assert not [w for w in server.writes() if w.name == old]


@pytest.mark.parametrize("drop", [False, True], ids=["500", "dropped-connection"])
def test_failure_half_way_then_rerun_completes(
    server: K8sServer, client: Any, v1: list[JSON], drop: bool
) -> None:
    server.inject_fault(method="PATCH", resource="pipelineversions", drop=drop)

    with pytest.raises(ApplyError) as failed:
        apply(v1, namespace=None, api_client=client)

    err = failed.value
    assert ("500" in err.message) != drop and ("lost the connection" in err.message) == drop
    assert "re-run" in err.hint
    assert [(c.kind, c.action) for c in err.changes] == [("Pipeline", "created")]
    assert server.get(PIPELINE_VERSION, NS, v1[1]["metadata"]["name"]) is None

    result = apply(v1, namespace=None, api_client=client)

    assert [c.action for c in result] == ["unchanged", "created"]
    assert server.get(PIPELINE_VERSION, NS, v1[1]["metadata"]["name"]) is not None


@pytest.mark.parametrize("can_read_namespaces", [True, False])
def test_wrong_namespace_is_named(
    server: K8sServer, client: Any, v1: list[JSON], can_read_namespaces: bool
) -> None:
    if not can_read_namespaces:  # as for most users: the create itself then says 404
        server.forbid("get", "namespaces")

    with pytest.raises(ApplyError) as failed:
        apply(v1, namespace="team-b", api_client=client)

    assert "namespace `team-b` does not exist" in failed.value.message
    assert "--namespace" in failed.value.hint
    assert server.objects(PIPELINE) == []


def test_forbidden_names_verb_resource_namespace_and_rule(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    server.forbid("create", "pipelineversions", NS)

    with pytest.raises(ApplyError) as failed:
        apply(v1, namespace=None, api_client=client)

    err = failed.value
    assert err.status == 403
    assert err.message.startswith(
        'forbidden: user "tester" cannot create pipelineversions.pipelines.kubeflow.org in '
        "namespace `team-a`"
    )
    assert 'apiGroups: ["pipelines.kubeflow.org"], resources: ["pipelineversions"]' in err.hint
    assert '"create"' in err.hint and "RoleBinding" in err.hint


def test_unreachable_server_fails_fast_and_clearly(tmp_path: Path, v1: list[JSON]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    client = load_api_client(kubeconfig=str(kubeconfig))
    # fast: one quick retry of a refused connection, a short connect timeout, no read retries
    retries = client.configuration.retries
    assert (retries.total, retries.connect, retries.read) == (1, 1, 0)
    assert REQUEST_TIMEOUT[0] <= 5
    try:
        with pytest.raises(ApplyError) as failed:
            apply(v1, namespace=None, api_client=client)
    finally:
        client.rest_client.pool_manager.clear()
    err = failed.value
    assert err.message.startswith(
        f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"
    )
    assert "Connection refused" in err.message and "\n" not in err.message
    assert "Traceback" not in str(err) and err.__suppress_context__


def test_object_not_managed_by_nbflow_is_refused_and_untouched(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    theirs = server.put(
        {
            "apiVersion": "pipelines.kubeflow.org/v2beta1",
            "kind": "Pipeline",
            "metadata": {"name": "tiny", "namespace": NS, "labels": {"team": "ml"}},
            "spec": {"displayName": "Someone else's"},
        }
    )

    with pytest.raises(ApplyError) as failed:
        apply(v1, namespace=None, api_client=client)

    err = failed.value
    assert (
        "Pipeline `tiny` in namespace `team-a` exists but nbflow did not create it" in err.message
    )
    assert "kubectl-client-side-apply" in err.message and "--force-conflicts" in err.hint
    first = err.changes[0]
    assert (first.kind, first.action, first.reason) == ("Pipeline", "conflict", "not-managed")
    assert server.writes() == []
    assert server.get(PIPELINE, NS, "tiny") == theirs

    # asked to, nbflow takes it over
    result = apply(v1, namespace=None, api_client=client, force_conflicts=True)
    assert [c.action for c in result] == ["updated", "created"]
    taken = server.get(PIPELINE, NS, "tiny")
    assert (
        taken is not None
        and taken["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "nbflow"
    )
    assert taken["spec"]["displayName"] == "tiny"
    assert all(w.query.get("force") == "true" for w in server.writes())


def test_spec_owned_by_another_field_manager_is_refused(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    labelled = copy.deepcopy(v1[0])
    labelled["spec"]["displayName"] = "edited by hand"
    server.put(labelled, manager="kubectl-edit")

    changes = diff_resources(v1, namespace=None, api_client=client)

    assert (changes[0].action, changes[0].reason) == ("conflict", "other-manager")
    assert "kubectl-edit" in changes[0].detail
    with pytest.raises(ApplyError):
        apply(v1, namespace=None, api_client=client)
    assert server.writes() == []

    result = apply(v1, namespace=None, api_client=client, force_conflicts=True)
    assert [c.action for c in result] == ["updated", "created"]
    taken = server.get(PIPELINE, NS, "tiny")
    assert taken is not None and taken["spec"]["displayName"] == "tiny"
    owners = {m["manager"]: m["fieldsV1"] for m in taken["metadata"]["managedFields"]}
    assert "f:displayName" in owners["nbflow"]["f:spec"]
    assert "f:spec" not in owners.get("kubectl-edit", {})


def test_a_version_with_the_same_name_and_another_spec_is_a_conflict(
    server: K8sServer, client: Any, v1: list[JSON], v2: list[JSON]
) -> None:
    apply(v1, namespace=None, api_client=client)
    server.clear_log()
    edited = copy.deepcopy(v2)
    edited[1]["metadata"]["name"] = v1[1]["metadata"]["name"]  # same name, other content

    with pytest.raises(ApplyError) as failed:
        apply(edited, namespace=None, api_client=client)

    err = failed.value
    assert err.message.startswith(
        f"refusing to apply: PipelineVersion `{v1[1]['metadata']['name']}` in namespace "
        "`team-a` exists with a different content hash"
    )
    assert "never changes in place" in err.message and "nbflow build" in err.hint
    assert [c.reason for c in err.changes if c.action == "conflict"] == ["immutable"]
    assert server.writes() == []


def test_dry_run_writes_nothing(server: K8sServer, client: Any, v1: list[JSON]) -> None:
    result = apply(v1, namespace=None, api_client=client, dry_run=True)

    assert result.dry_run and result.ok
    assert [c.action for c in result] == ["would-create", "would-create"]
    assert server.writes() == []
    assert server.objects(PIPELINE) == []

    apply(v1, namespace=None, api_client=client)
    again = apply(v1, namespace=None, api_client=client, dry_run=True)
    assert [c.action for c in again] == ["unchanged", "unchanged"]


def test_dry_run_reports_conflicts_without_raising(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    server.put({**v1[0], "metadata": {"name": "tiny", "namespace": NS}})

    result = apply(v1, namespace=None, api_client=client, dry_run=True)

    assert not result.ok
    assert [c.action for c in result] == ["conflict", "would-create"]


def test_missing_crd_says_kfp_is_not_in_kubernetes_native_mode(
    make_client: Callable[..., Any], v1: list[JSON]
) -> None:
    with K8sServer(namespaces=[NS], types=()) as bare:
        client = make_client(bare)
        with pytest.raises(ApplyError) as failed:
            apply(v1, namespace=None, api_client=client)
    assert "does not serve Pipeline (pipelines.kubeflow.org/v2beta1)" in failed.value.message
    assert "Kubernetes-native mode" in failed.value.hint


def test_missing_katib_is_named(make_client: Callable[..., Any], v1: list[JSON]) -> None:
    with K8sServer(namespaces=[NS], types=KFP_TYPES) as kfp_only:
        client = make_client(kfp_only)
        with pytest.raises(ApplyError) as failed:
            apply([*v1, _experiment()], namespace=None, api_client=client)
        assert kfp_only.writes() == []  # found out before anything was written
    assert "does not serve Experiment (kubeflow.org/v1beta1)" in failed.value.message
    assert "install Katib" in failed.value.hint


def test_bad_credentials_are_a_401(
    server: K8sServer, make_client: Callable[..., Any], v1: list[JSON]
) -> None:
    client = make_client(server, token="expired")
    with pytest.raises(ApplyError) as failed:
        apply(v1, namespace=None, api_client=client)
    assert failed.value.status == 401 and "rejected the credentials" in failed.value.message


def test_webhook_rejection_shows_the_server_message(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    with pytest.raises(ApplyError) as failed:
        apply(v1[1:], namespace=None, api_client=client)  # a version without its Pipeline

    err = failed.value
    assert 'admission webhook "pipelineversions.pipelines.kubeflow.org" denied the request' in (
        err.message
    )
    assert "spec.pipelineName doesn't map to an existing Pipeline" in err.message
    assert "Pipeline first" in err.hint


def test_experiment_is_created_then_unchanged_despite_server_defaults(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    def katib_defaults(req: AdmissionRequest) -> None:  # as Katib's mutating webhook does
        if req.rtype == EXPERIMENT:
            req.obj["spec"].setdefault("parallelTrialCount", 3)
            req.obj["spec"].setdefault("resumePolicy", "Never")

    server.mutating.append(katib_defaults)
    resources = [*v1, _experiment()]

    first = apply(resources, namespace=None, api_client=client)
    server.clear_log()
    second = apply(resources, namespace=None, api_client=client)

    assert [c.action for c in first] == ["created", "created", "created"]
    assert [c.action for c in second] == ["unchanged", "unchanged", "unchanged"]
    assert server.writes() == []
    with pytest.raises(ApplyError) as failed:
        apply([*v1, _experiment(max_trials=9)], namespace=None, api_client=client)
    assert "Experiment `tiny-tune-1a2b3c`" in failed.value.message
    assert "spec.maxTrialCount" in failed.value.message


def test_resources_are_applied_pipeline_first_whatever_the_input_order(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    result = apply(list(reversed(v1)), namespace=None, api_client=client)
    assert [c.kind for c in result] == ["Pipeline", "PipelineVersion"]


# --- namespaces and kubeconfig -----------------------------------------------------------------


def test_namespace_argument_overrides_the_resources(
    server: K8sServer, client: Any, v1: list[JSON]
) -> None:
    server.namespaces.add("team-b")
    result = apply(v1, namespace="team-b", api_client=client)
    assert {c.namespace for c in result} == {"team-b"}
    assert server.get(PIPELINE, "team-b", "tiny") is not None
    assert server.get(PIPELINE, NS, "tiny") is None


def test_context_namespace_is_the_fallback(
    server: K8sServer, make_client: Callable[..., Any], v1: list[JSON]
) -> None:
    for doc in v1:
        del doc["metadata"]["namespace"]
    client = make_client(server, namespace=NS)
    assert {c.namespace for c in apply(v1, namespace=None, api_client=client)} == {NS}

    plain = make_client(server)  # no namespace in the context: "default"
    assert {c.namespace for c in diff_resources(v1, namespace=None, api_client=plain)} == {
        "default"
    }


def test_kubeconfig_from_the_environment(
    server: K8sServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = server.write_kubeconfig(tmp_path / "env-kubeconfig", namespace=NS)
    monkeypatch.setenv("KUBECONFIG", str(path))
    client = load_api_client()
    try:
        assert client.configuration.host == server.url
        assert client.nbflow_namespace == NS
    finally:
        client.rest_client.pool_manager.clear()


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ApplyError) as failed:
        load_api_client()
    assert "no Kubernetes configuration found" in failed.value.message
    assert "--kubeconfig" in failed.value.hint


def test_unknown_context_lists_the_known_ones(server: K8sServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    with pytest.raises(ApplyError) as failed:
        load_api_client(kubeconfig=str(path), context="staging")
    assert "context `staging`" in failed.value.message and "prod" in failed.value.hint
    with pytest.raises(ApplyError, match="does not exist"):
        load_api_client(kubeconfig=str(tmp_path / "missing"))


def test_malformed_resource_is_an_apply_error(client: Any) -> None:
    with pytest.raises(ApplyError, match="resource #1 is not a Kubernetes object"):
        apply([{"kind": "Pipeline"}], namespace=None, api_client=client)


# --- the emulator itself -----------------------------------------------------------------------


def test_emulator_serves_the_dynamic_client(
    server: K8sServer, client: Any, tmp_path: Path, v1: list[JSON]
) -> None:
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(client, cache_file=str(tmp_path / "discovery.json"))
    versions = dyn.resources.get(
        api_version="pipelines.kubeflow.org/v2beta1", kind="PipelineVersion"
    )
    assert versions.name == "pipelineversions" and versions.namespaced
    pipelines = dyn.resources.get(api_version="pipelines.kubeflow.org/v2beta1", kind="Pipeline")
    created = pipelines.server_side_apply(body=v1[0], namespace=NS, field_manager="someone")
    assert created.metadata.name == "tiny"
    listed = pipelines.get(namespace=NS, label_selector="nbflow.dev/pipeline=tiny")
    assert [i.metadata.name for i in listed.items] == ["tiny"]
    pipelines.delete(name="tiny", namespace=NS)
    assert server.get(PIPELINE, NS, "tiny") is None


def test_emulator_apply_conflicts_and_immutable_versions(
    server: K8sServer, client: Any, tmp_path: Path, v1: list[JSON]
) -> None:
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ApiException

    apply(v1, namespace=None, api_client=client)
    dyn = DynamicClient(client, cache_file=str(tmp_path / "discovery.json"))
    pipelines = dyn.resources.get(api_version="pipelines.kubeflow.org/v2beta1", kind="Pipeline")
    other = copy.deepcopy(v1[0])
    other["spec"]["displayName"] = "renamed"
    with pytest.raises(ApiException) as conflict:
        pipelines.server_side_apply(body=other, namespace=NS, field_manager="kubectl")
    assert conflict.value.status == 409
    assert ".spec.displayName" in json.loads(conflict.value.body)["message"]

    versions = dyn.resources.get(
        api_version="pipelines.kubeflow.org/v2beta1", kind="PipelineVersion"
    )
    edited = copy.deepcopy(v1[1])
    edited["spec"]["description"] = "changed"
    with pytest.raises(ApiException) as immutable:
        versions.server_side_apply(body=edited, namespace=NS, field_manager="nbflow")
    assert immutable.value.status == 400
    assert "Pipeline spec is immutable" in json.loads(immutable.value.body)["message"]


def test_emulator_create_merge_patch_selectors_and_faults(
    server: K8sServer, client: Any, tmp_path: Path, v1: list[JSON]
) -> None:
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ApiException

    dyn = DynamicClient(client, cache_file=str(tmp_path / "discovery.json"))
    pipelines = dyn.resources.get(api_version="pipelines.kubeflow.org/v2beta1", kind="Pipeline")
    created = pipelines.create(body=v1[0], namespace=NS)
    entry = created.metadata.managedFields[0]  # manager named after the User-Agent
    assert (entry.manager, entry.operation) == ("nbflow", "Update")
    with pytest.raises(ApiException) as exists:
        pipelines.create(body=v1[0], namespace=NS)
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    patched = pipelines.patch(
        body={"spec": {"description": "d", "displayName": None}},
        name="tiny",
        namespace=NS,
        content_type="application/merge-patch+json",
    )
    assert patched.spec.description == "d" and "displayName" not in patched.spec
    assert int(patched.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    with pytest.raises(ApiException) as unsupported:
        pipelines.patch(body={"spec": {}}, name="tiny", namespace=NS)  # strategic merge
    assert unsupported.value.status == 415
    assert pipelines.get(namespace=NS, label_selector="nbflow.dev/pipeline!=tiny").items == []
    with pytest.raises(ApiException) as missing:
        pipelines.get(name="nope", namespace=NS)
    assert json.loads(missing.value.body)["message"] == (
        'pipelines.pipelines.kubeflow.org "nope" not found'
    )

    server.inject_fault(nth=2, status=503)  # the second request from now, whatever it is
    pipelines.get(name="tiny", namespace=NS)
    with pytest.raises(ApiException) as injected:
        pipelines.get(name="tiny", namespace=NS)
    assert injected.value.status == 503
    pipelines.get(name="tiny", namespace=NS)
    assert [r.status for r in server.requests[-3:]] == [200, 503, 200]
