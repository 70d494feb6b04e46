"""`nbflow diff` / `nbflow apply` end to end, and `nbflow init --ci github`.

Small projects live in a `git init`ed folder under tmp_path; the cluster is the loopback
Kubernetes API emulator (tests/support/k8s_server.py), and `deploy.kfp: api` talks to a small
loopback server of the KFP v2beta1 pipeline endpoints, defined below.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from nbflow.cli.commands.deploy import exit_code, render_markdown, result_json
from nbflow.cli.commands.init import cmd_init_ci
from nbflow.deploy import gitops
from nbflow.deploy.kubernetes import ApplyError, Change
from nbflow.errors import UsageError
from tests.support.cases import CASES
from tests.support.cli import Result, run_cli
from tests.support.k8s_server import EXPERIMENT, PIPELINE, PIPELINE_VERSION, K8sServer
from tests.support.kfp_server import unused_port

NS = "team-a"
MANIFEST = (CASES / "valid" / "minimal" / "nbflow.yaml").read_text(encoding="utf-8")
TUNING = (CASES / "valid" / "with-tuning" / "nbflow.yaml").read_text(encoding="utf-8")


# --- helpers -----------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """`nbflow diff|apply ...` in-process, as the CLI runs it; never a traceback."""
    result = run_cli(capsys, *argv)
    assert "Traceback" not in result.err
    return result


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write_project(
    repo: Path, name: str = "digits", manifest: str = MANIFEST, **deploy: Any
) -> Path:
    """A project folder: the base notebook beside a manifest, with `deploy:` settings."""
    folder = repo / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CASES / "notebooks" / "base.ipynb", folder / "base.ipynb")
    text = manifest.replace("../../notebooks/base.ipynb", "base.ipynb")
    if deploy:
        text += yaml.safe_dump({"deploy": deploy}, sort_keys=False)
    (folder / "nbflow.yaml").write_text(text, encoding="utf-8")
    return folder


def commit(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def edit_cell(folder: Path, number: int, source: str) -> None:
    path = folder / "base.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][number - 1]["source"] = source
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    (root / ".gitignore").write_text("dist/\n", encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv(gitops.KFP_TOKEN_ENV, raising=False)
    return root


@pytest.fixture
def server() -> Iterator[K8sServer]:
    with K8sServer(namespaces=[NS]) as srv:
        yield srv


@pytest.fixture
def kubeconfig(server: K8sServer, tmp_path: Path) -> str:
    return str(server.write_kubeconfig(tmp_path / "kubeconfig"))


def apply_args(kubeconfig: str, tmp_path: Path, *extra: str) -> list[str]:
    return ["apply", "--kubeconfig", kubeconfig, "--out", str(tmp_path / "dist"), *extra]


def version_of(out: str) -> str:
    found = re.search(r"PipelineVersion (digits-[0-9a-f]{8})", out)
    assert found, out
    return found.group(1)


# --- apply and diff through Kubernetes ---------------------------------------------------------


def test_first_apply_creates_and_a_second_is_unchanged(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    sha = commit(repo)
    first = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert first.code == 0, first.err
    version = version_of(first.out)
    assert first.out.splitlines() == [
        f"created Pipeline digits in {NS}",
        f"created PipelineVersion {version} in {NS}",
    ]
    live = server.get(PIPELINE_VERSION, NS, version)
    assert live is not None
    labels = live["metadata"]["labels"]
    assert labels["nbflow.dev/snapshot"] == sha[:12]
    assert labels["app.kubernetes.io/managed-by"] == "nbflow"
    assert live["metadata"]["annotations"]["nbflow.dev/manifest"] == "digits/nbflow.yaml"

    server.clear_log()
    second = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert second.code == 0, second.err
    assert second.out.splitlines() == [
        f"unchanged Pipeline digits in {NS}",
        f"unchanged PipelineVersion {version} in {NS}",
    ]
    assert server.writes() == []


def test_diff_reads_only_and_speaks_text_json_and_markdown(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    text = run(capsys, "diff", "--kubeconfig", kubeconfig)
    assert text.code == 0, text.err
    version = version_of(text.out)
    assert text.out.splitlines() == [
        f"create Pipeline digits in {NS}",
        f"create PipelineVersion {version} in {NS}",
    ]
    as_json = run(capsys, "diff", "--kubeconfig", kubeconfig, "--format", "json")
    (project,) = json.loads(as_json.out)
    assert project["manifest"] == "digits/nbflow.yaml" and project["ok"] is True
    assert [c["action"] for c in project["changes"]] == ["create", "create"]
    markdown = run(capsys, "diff", "--kubeconfig", kubeconfig, "--format", "markdown")
    assert f"| create | PipelineVersion | {version} | {NS} |" in markdown.out
    assert server.writes() == []
    assert not (repo / "dist").exists()  # diff builds into a temporary folder

    assert run(capsys, *apply_args(kubeconfig, tmp_path)).code == 0
    after = run(capsys, "diff", "--kubeconfig", kubeconfig)
    assert after.out.splitlines() == [
        f"unchanged Pipeline digits in {NS}",
        f"unchanged PipelineVersion {version} in {NS}",
    ]


def test_a_changed_notebook_is_a_new_version_and_the_old_one_stays(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    folder = write_project(repo, namespace=NS)
    commit(repo)
    old = version_of(run(capsys, *apply_args(kubeconfig, tmp_path)).out)
    edit_cell(
        folder,
        7,
        "model = SVC(C=C, gamma=gamma, kernel=kernel, probability=True).fit(X_train, y_train)",
    )
    sha = commit(repo, "train with probabilities")

    planned = run(capsys, "diff", "--kubeconfig", kubeconfig)
    new = version_of(planned.out)
    assert new != old
    assert f"new-version PipelineVersion {new} in {NS}" in planned.out

    applied = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert applied.code == 0, applied.err
    # the Pipeline's labels follow its newest version (snapshot, content hash)
    assert applied.out.splitlines() == [
        f"updated Pipeline digits in {NS}",
        f"created PipelineVersion {new} in {NS}",
    ]
    names = {v["metadata"]["name"] for v in server.objects(PIPELINE_VERSION, NS)}
    assert names == {old, new}
    live = server.get(PIPELINE_VERSION, NS, new)
    assert live is not None and live["metadata"]["labels"]["nbflow.dev/snapshot"] == sha[:12]
    assert (tmp_path / "dist" / "digits" / old.split("-")[1]).is_dir()


def test_a_dirty_tree_is_refused_unless_allowed(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    folder = write_project(repo, namespace=NS)
    commit(repo)
    edit_cell(folder, 7, "model = SVC(C=2 * C, gamma=gamma, kernel=kernel).fit(X_train, y_train)")
    refused = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert refused.code == 2
    assert "refusing to apply from a working tree that is not committed" in refused.err
    assert "digits/nbflow.yaml: snapshot" in refused.err and "-dirty" in refused.err
    assert "--allow-dirty" in refused.err
    assert server.requests == [] and not (tmp_path / "dist").exists()  # nothing built, nothing sent

    allowed = run(capsys, *apply_args(kubeconfig, tmp_path, "--allow-dirty"))
    assert allowed.code == 0, allowed.err
    live = server.get(PIPELINE_VERSION, NS, version_of(allowed.out))
    assert live is not None and live["metadata"]["labels"]["nbflow.dev/snapshot"].endswith("-dirty")


def test_outside_git_is_refused_too(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: str,
) -> None:
    plain = tmp_path / "plain"
    write_project(plain, namespace=NS)
    monkeypatch.chdir(plain)
    refused = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert refused.code == 2 and "snapshot untracked" in refused.err


def test_the_experiment_is_skipped_unless_the_manifest_opts_in(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, manifest=TUNING, namespace=NS)
    commit(repo)
    result = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert result.code == 0, result.err
    version = version_of(result.out)
    assert result.out.splitlines() == [
        f"created Pipeline digits in {NS}",
        f"created PipelineVersion {version} in {NS}",
        f"skipped Experiment {version} in {NS} (deploy.experiment is not true in nbflow.yaml)",
    ]
    assert server.objects(EXPERIMENT) == []


def test_the_experiment_is_applied_after_its_pipeline_version_when_opted_in(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, manifest=TUNING, namespace=NS, experiment=True)
    commit(repo)
    result = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert result.code == 0, result.err
    version = version_of(result.out)
    assert result.out.splitlines() == [
        f"created Pipeline digits in {NS}",
        f"created PipelineVersion {version} in {NS}",
        f"created Experiment {version} in {NS}",
    ]
    assert [e["metadata"]["name"] for e in server.objects(EXPERIMENT, NS)] == [version]
    again = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert again.out.splitlines()[-1] == f"unchanged Experiment {version} in {NS}"


def test_a_commit_that_keeps_the_content_applies_as_a_no_op(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    first_sha = commit(repo)
    version = version_of(run(capsys, *apply_args(kubeconfig, tmp_path)).out)
    (repo / "README.md").write_text("docs only\n", encoding="utf-8")
    commit(repo, "docs")
    result = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert result.code == 0, result.err
    assert f"unchanged PipelineVersion {version} in {NS}" in result.out.splitlines()
    live = server.get(PIPELINE_VERSION, NS, version)
    # the version keeps the commit that first produced its content
    assert live is not None and live["metadata"]["labels"]["nbflow.dev/snapshot"] == first_sha[:12]


def test_dry_run_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    result = run(capsys, *apply_args(kubeconfig, tmp_path, "--dry-run", "--json"))
    assert result.code == 0, result.err
    (project,) = json.loads(result.out)
    assert project["dry_run"] is True
    assert [c["action"] for c in project["changes"]] == ["would-create", "would-create"]
    assert server.writes() == []


def test_the_command_line_namespace_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path, kubeconfig: str
) -> None:
    with K8sServer(namespaces=[NS, "team-b"]) as srv:
        config = str(srv.write_kubeconfig(tmp_path / "kubeconfig-b"))
        write_project(repo, namespace=NS)
        commit(repo)
        result = run(capsys, *apply_args(config, tmp_path, "--namespace", "team-b"))
        assert result.code == 0, result.err
        assert [p["metadata"]["name"] for p in srv.objects(PIPELINE, "team-b")] == ["digits"]
        assert srv.objects(PIPELINE, NS) == []


def test_json_lists_every_project_and_an_invalid_one_is_not_applied(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, "good", namespace=NS)
    bad = (CASES / "invalid" / "unknown-tuning-key" / "nbflow.yaml").read_text(encoding="utf-8")
    write_project(repo, "bad", manifest=bad)
    commit(repo)
    result = run(capsys, *apply_args(kubeconfig, tmp_path, "--json"))
    assert result.code == 1
    projects = {p["manifest"]: p for p in json.loads(result.out)}
    assert set(projects) == {"good/nbflow.yaml", "bad/nbflow.yaml"}
    assert projects["good/nbflow.yaml"]["ok"] is True
    assert [c["action"] for c in projects["good/nbflow.yaml"]["changes"]] == ["created", "created"]
    broken = projects["bad/nbflow.yaml"]
    assert broken["ok"] is False and broken["changes"] == []
    assert [d["code"] for d in broken["diagnostics"]] == ["NBF101"]
    assert "error[NBF101]" in result.err and "bad/nbflow.yaml has errors" in result.err
    assert len(server.objects(PIPELINE_VERSION, NS)) == 1


def test_forbidden_is_a_clear_message_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    server.forbid("create", "pipelineversions", NS)
    server.forbid("patch", "pipelineversions", NS)
    result = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert result.code == 2
    assert (
        'nbflow: forbidden: user "tester" cannot patch pipelineversions.pipelines.kubeflow.org '
        f"in namespace `{NS}`" in result.err
    )
    assert "(digits/nbflow.yaml)" in result.err and "hint: grant a Role" in result.err
    assert result.out.splitlines() == [f"created Pipeline digits in {NS}"]  # what was done


def test_unreachable_cluster_is_a_clear_message_and_exit_2(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    config = tmp_path / "down"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{unused_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    result = run(capsys, *apply_args(str(config), tmp_path))
    assert result.code == 2
    assert "nbflow: cannot reach the Kubernetes API server at http://127.0.0.1:" in result.err
    assert "Connection refused" in result.err


def test_no_kubeconfig_is_exit_2(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run(capsys, "diff")
    assert result.code == 2 and "no Kubernetes configuration found" in result.err


def test_a_conflict_is_exit_1_and_force_takes_over(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    write_project(repo, namespace=NS)
    commit(repo)
    server.put(
        {
            "apiVersion": PIPELINE.api_version,
            "kind": "Pipeline",
            "metadata": {"name": "digits", "namespace": NS},
            "spec": {"displayName": "someone else's"},
        }
    )
    refused = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert refused.code == 1
    assert "nbflow: refusing to apply: Pipeline `digits`" in refused.err
    assert "--force-conflicts" in refused.err
    assert server.writes() == []
    forced = run(capsys, *apply_args(kubeconfig, tmp_path, "--force"))
    assert forced.code == 0, forced.err
    assert forced.out.splitlines()[0] == f"updated Pipeline digits in {NS}"


def test_no_manifest_is_a_usage_error(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    result = run(capsys, "apply")
    assert result.code == 2 and "no nbflow.yaml found under ." in result.err


# --- the library -------------------------------------------------------------------------------


def test_results_are_json_serialisable_and_resources_come_in_order(
    repo: Path, server: K8sServer, kubeconfig: str, tmp_path: Path
) -> None:
    write_project(repo, manifest=TUNING, namespace=NS)
    commit(repo)
    results = gitops.apply_projects(["."], kubeconfig=kubeconfig, out_dir=tmp_path / "dist")
    (result,) = results
    assert isinstance(result, gitops.ProjectApply) and result.ok
    json.dumps([result_json(r) for r in results])
    assert result.folder is not None
    folder = Path(result.folder)
    kinds = [r["kind"] for r in gitops.resources_of(folder, include_experiment=False)]
    assert kinds == ["Pipeline", "PipelineVersion"]
    kinds = [r["kind"] for r in gitops.resources_of(folder, include_experiment=True)]
    assert kinds == ["Pipeline", "PipelineVersion", "Experiment"]
    with pytest.raises(UsageError, match="does not exist"):
        gitops.resources_of(tmp_path, include_experiment=False)


def test_exit_codes_of_apply_errors() -> None:
    conflict = Change("Pipeline", "p", "ns", "conflict", reason="not-managed")
    refused = ApplyError("refusing", changes=(conflict,))
    assert not refused.cluster_unusable and exit_code(refused) == 1
    assert ApplyError("no route").cluster_unusable and exit_code(ApplyError("no route")) == 2
    for status in (401, 403, 404):
        assert exit_code(ApplyError("x", status=status)) == 2
    for status in (409, 422, 500):
        assert exit_code(ApplyError("x", status=status)) == 1
    wrapped = gitops.DeployError(ApplyError("x", status=403), [])
    assert isinstance(wrapped, ApplyError) and exit_code(wrapped) == 2


# --- deploy.kfp: api ---------------------------------------------------------------------------


@dataclass
class KfpPipelines:
    """A loopback KFP v2beta1 API: the pipeline endpoints `nbflow apply` uses.

    GET  /apis/v2beta1/pipelines/names/{name}?namespace=   GetPipelineByName (404 when absent)
    POST /apis/v2beta1/pipelines                           CreatePipeline (JSON body)
    GET  /apis/v2beta1/pipelines/{id}/versions?filter=     ListPipelineVersions (EQUALS filters)
    POST /apis/v2beta1/pipelines/upload_version?name=&pipelineid=   multipart `uploadfile`

    Shapes as KFP's grpc-gateway writes them: snake_case, empty lists left out, errors as
    {"code": <gRPC code>, "message": ...}.
    """

    token: str | None = None
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> KfpPipelines:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.serve(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        self.requests.append((h.command, path))
        if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self.send(h, 401, {"code": 16, "message": "Unauthenticated: no valid token"})
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:3] != ["apis", "v2beta1", "pipelines"]:
            return self.send(h, 404, {"code": 5, "message": f"Not Found: {path}"})
        rest = parts[3:]
        if h.command == "GET" and len(rest) == 2 and rest[0] == "names":
            ns = query.get("namespace", "")
            for p in self.pipelines.values():
                if p["name"] == rest[1] and p.get("namespace", "") == ns:
                    return self.send(h, 200, p)
            return self.send(h, 404, {"code": 5, "message": f"Pipeline {rest[1]} not found"})
        if h.command == "POST" and not rest:
            body = json.loads(raw)
            pipeline = {
                "pipeline_id": str(uuid.uuid4()),
                "name": body["name"],
                "display_name": body.get("display_name", body["name"]),
                "description": body.get("description", ""),
                "created_at": "2026-01-01T00:00:00Z",
            }
            if body.get("namespace"):
                pipeline["namespace"] = body["namespace"]
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            return self.send(h, 200, pipeline)
        if h.command == "GET" and len(rest) == 2 and rest[1] == "versions":
            found = [v for v in self.versions.values() if v["pipeline_id"] == rest[0]]
            for predicate in json.loads(query.get("filter") or "{}").get("predicates", []):
                value = predicate.get("stringValue", predicate.get("string_value"))
                found = [v for v in found if v.get(predicate["key"]) == value]
            return self.send(
                h, 200, {"pipeline_versions": found, "total_size": len(found)} if found else {}
            )
        if h.command == "POST" and rest == ["upload_version"]:
            if query.get("pipelineid") not in self.pipelines:
                return self.send(h, 404, {"code": 5, "message": "pipeline not found"})
            form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + h.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
            )
            files = {
                part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in form.iter_parts()
            }
            version = {
                "pipeline_id": query["pipelineid"],
                "pipeline_version_id": str(uuid.uuid4()),
                "name": query["name"],
                "display_name": query.get("display_name", query["name"]),
                "description": query.get("description", ""),
                "created_at": "2026-01-01T00:00:00Z",
            }
            self.versions[version["pipeline_version_id"]] = version
            self.uploads[version["name"]] = files["uploadfile"]
            return self.send(h, 200, version)
        return self.send(h, 404, {"code": 5, "message": f"Not Found: {h.command} {path}"})

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def test_api_mode_uploads_a_pipeline_then_versions_through_the_kfp_api(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    with KfpPipelines() as kfp:
        folder = write_project(repo, namespace=NS, kfp="api", host=kfp.url)
        commit(repo)
        planned = run(capsys, "diff")
        assert planned.code == 0, planned.err
        version = version_of(planned.out)
        assert planned.out.splitlines() == [
            f"create Pipeline digits in {NS} (KFP API)",
            f"create PipelineVersion {version} in {NS} (KFP API)",
        ]
        assert kfp.pipelines == {}

        first = run(capsys, "apply", "--out", str(tmp_path / "dist"))
        assert first.code == 0, first.err
        assert first.out.splitlines() == [
            f"created Pipeline digits in {NS} (KFP API)",
            f"created PipelineVersion {version} in {NS} (KFP API)",
        ]
        (pipeline,) = kfp.pipelines.values()
        assert pipeline["name"] == "digits" and pipeline["namespace"] == NS
        built = tmp_path / "dist" / "digits" / version.split("-")[1] / "pipeline.yaml"
        assert kfp.uploads[version] == built.read_bytes()

        again = run(capsys, "apply", "--out", str(tmp_path / "dist"))
        assert again.out.splitlines() == [
            f"unchanged Pipeline digits in {NS} (KFP API)",
            f"unchanged PipelineVersion {version} in {NS} (KFP API)",
        ]
        assert len(kfp.versions) == 1

        edit_cell(
            folder,
            7,
            "model = SVC(C=C, gamma=gamma, kernel=kernel, tol=1e-4).fit(X_train, y_train)",
        )
        commit(repo)
        newer = run(capsys, "apply", "--out", str(tmp_path / "dist"), "--json")
        (project,) = json.loads(newer.out)
        assert project["mode"] == "api"
        assert [c["action"] for c in project["changes"]] == ["unchanged", "created"]
        assert len(kfp.pipelines) == 1 and len(kfp.versions) == 2


def test_api_mode_needs_a_host_and_names_bad_credentials(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(repo, namespace=NS, kfp="api")
    commit(repo)
    no_host = run(capsys, "diff")
    assert no_host.code == 2 and "`deploy.kfp: api` needs the KFP API's URL" in no_host.err
    with KfpPipelines(token="s3cret") as kfp:
        denied = run(capsys, "apply", "--host", kfp.url, "--out", str(tmp_path / "dist"))
        assert denied.code == 2
        assert f"nbflow: the KFP API at {kfp.url} rejected the credentials (401)" in denied.err
        assert f"hint: set {gitops.KFP_TOKEN_ENV}" in denied.err
        monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
        allowed = run(capsys, "apply", "--host", kfp.url, "--out", str(tmp_path / "dist"))
        assert allowed.code == 0, allowed.err
        assert len(kfp.versions) == 1
    down = run(
        capsys,
        "apply",
        "--host",
        f"http://127.0.0.1:{unused_port()}",
        "--out",
        str(tmp_path / "dist"),
    )
    assert down.code == 2 and "cannot reach the KFP API at http://127.0.0.1:" in down.err


# --- init --ci github --------------------------------------------------------------------------


def test_init_ci_writes_both_workflows_and_refuses_to_overwrite(tmp_path: Path) -> None:
    written = gitops.init_ci(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        ".github/workflows/nbflow-validate.yml",
        ".github/workflows/nbflow-deploy.yml",
    ]
    source = gitops.templates_folder()
    for path in written:  # the templates pin this nbflow's version already
        assert path.read_text(encoding="utf-8") == (source / path.name).read_text(encoding="utf-8")
    written[0].unlink()
    written[1].write_text("mine\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"nbflow-deploy\.yml already exists; pass --force"):
        gitops.init_ci(tmp_path)
    assert written[1].read_text(encoding="utf-8") == "mine\n"  # nothing was written
    assert not written[0].exists()
    gitops.init_ci(tmp_path, force=True)
    assert "nbflow deploy" in written[1].read_text(encoding="utf-8")


def test_init_ci_installs_the_given_release_and_refuses_what_pypi_cannot_hold(
    tmp_path: Path,
) -> None:
    validate, deploy = gitops.init_ci(tmp_path, nbflow_version="1.2.3rc1")
    assert '"nbflow[build]==1.2.3rc1"' in validate.read_text(encoding="utf-8")
    assert '"nbflow[deploy]==1.2.3rc1"' in deploy.read_text(encoding="utf-8")
    for bad, why in (
        ("1.2.3+local", "a local build"),
        ('1"; curl x|sh; "', "not a version pip can read"),
        ("main", "not a version pip can read"),
    ):
        with pytest.raises(UsageError, match=why):
            gitops.init_ci(tmp_path, force=True, nbflow_version=bad)
    assert '"nbflow[build]==1.2.3rc1"' in validate.read_text(encoding="utf-8")  # left as it was


def test_cmd_init_ci(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from nbflow.cli.main import main, parser

    args = parser().parse_args(["init", "--ci", "github", "--root", str(tmp_path)])
    assert cmd_init_ci(args) == 0
    out = capsys.readouterr().out
    assert "wrote " in out and "nbflow-validate.yml" in out and "nbflow-deploy.yml" in out
    root = ["init", "--ci", "github", "--force", "--root", str(tmp_path)]
    assert main([*root, "--nbflow-version", "2.0.1"]) == 0
    assert '"nbflow[deploy]==2.0.1"' in (
        tmp_path / ".github" / "workflows" / "nbflow-deploy.yml"
    ).read_text(encoding="utf-8")
    # the old option says what replaced it, and writes nothing
    assert main([*root, "--action-ref", "0123456789abcdef0123456789abcdef01234567"]) == 2
    err = capsys.readouterr().err
    assert "--action-ref is gone" in err and "--nbflow-version" in err


# --- where the KFP token goes (issue 12, item 2) -------------------------------------------------


class Recorder:
    """A loopback HTTP server that records every request's headers and answers `status` (with a
    `Location` for a redirect)."""

    def __init__(self, status: int = 404, location: str | None = None) -> None:
        self.status, self.location = status, location
        self.seen: list[dict[str, str]] = []

    def __enter__(self) -> Recorder:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rec.seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(rec.status)
                if rec.location:
                    self.send_header("Location", rec.location + self.path)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_a_host_only_a_manifest_names_never_gets_the_token(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """A pull request's `deploy: {kfp: api, host: ...}` once decided where NBFLOW_KFP_TOKEN
    went, even for the read-only `diff`: now nothing is sent to that host at all."""
    monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
    monkeypatch.delenv(gitops.KFP_HOST_ENV, raising=False)
    with Recorder() as attacker:
        write_project(repo, namespace=NS, kfp="api", host=attacker.url)
        commit(repo)
        extra = ["--out", str(tmp_path / "dist")] if command == "apply" else []
        r = run(capsys, command, *extra)
        assert r.code == 2
        assert f"{gitops.KFP_TOKEN_ENV} is set, but the KFP API URL" in r.err
        assert f"hint: pass --kfp-host {attacker.url}" in r.err
        assert attacker.seen == []
        assert "s3cret" not in r.out + r.err


def test_the_operators_host_wins_and_alone_gets_the_token(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
    with Recorder() as attacker, KfpPipelines(token="s3cret") as kfp:
        write_project(repo, namespace=NS, kfp="api", host=attacker.url)
        commit(repo)
        for how in ("--kfp-host", "--host", "env"):
            if how == "env":
                monkeypatch.setenv(gitops.KFP_HOST_ENV, kfp.url)
                r = run(capsys, "diff")
            else:
                monkeypatch.delenv(gitops.KFP_HOST_ENV, raising=False)
                r = run(capsys, "diff", how, kfp.url)
            assert r.code == 0, r.err
            assert "create PipelineVersion" in r.out
        assert attacker.seen == [] and kfp.requests  # the manifest's host was never asked
        # the same host in the manifest and from the operator: the token goes there
        write_project(repo, namespace=NS, kfp="api", host=kfp.url)
        commit(repo)
        applied = run(capsys, "apply", "--out", str(tmp_path / "dist"))
        assert applied.code == 0, applied.err
        assert len(kfp.versions) == 1


def test_a_manifests_host_without_a_token_still_works(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(gitops.KFP_HOST_ENV, raising=False)
    with KfpPipelines() as kfp:
        write_project(repo, namespace=NS, kfp="api", host=kfp.url)
        commit(repo)
        r = run(capsys, "diff")
        assert r.code == 0, r.err


@pytest.mark.parametrize(
    ("host", "sent"),
    [
        ("http://kfp.example.com", False),
        ("http://10.0.0.7:8888", False),
        ("https://kfp.example.com", True),
        ("http://localhost:8888", True),
        ("http://127.0.0.1:8888", True),
        ("http://[::1]:8888", True),
    ],
)
def test_a_token_never_travels_over_plain_http_but_to_loopback(
    monkeypatch: pytest.MonkeyPatch, host: str, sent: bool
) -> None:
    from nbflow.deploy.kfp_api import bearer_token

    monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
    if sent:
        assert bearer_token(host, operator_named=True, shown="x/nbflow.yaml") == "s3cret"
    else:
        with pytest.raises(UsageError, match="refusing to send NBFLOW_KFP_TOKEN over plain http"):
            bearer_token(host, operator_named=True, shown="x/nbflow.yaml")
    monkeypatch.delenv(gitops.KFP_TOKEN_ENV)
    assert bearer_token(host, operator_named=False, shown="x/nbflow.yaml") is None


def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
    write_project(repo, namespace=NS, kfp="api")
    commit(repo)
    r = run(capsys, "diff", "--kfp-host", "http://kfp.example.invalid:8888")
    assert r.code == 2 and "refusing to send NBFLOW_KFP_TOKEN over plain http" in r.err


@pytest.mark.parametrize("url", ["file:///etc/passwd", "not a url", "https://u:p@kfp.example.com"])
def test_the_operators_host_must_be_an_http_url(
    capsys: pytest.CaptureFixture[str], repo: Path, url: str
) -> None:
    write_project(repo, namespace=NS, kfp="api")
    commit(repo)
    r = run(capsys, "diff", "--kfp-host", url)
    assert r.code == 2 and f"--kfp-host {url} " in r.err


def test_a_redirect_is_not_followed_with_the_token(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gitops.KFP_TOKEN_ENV, "s3cret")
    with Recorder() as elsewhere, Recorder(302, location=elsewhere.url) as kfp:
        write_project(repo, namespace=NS, kfp="api")
        commit(repo)
        r = run(capsys, "diff", "--kfp-host", kfp.url)
        assert r.code != 0 and kfp.seen
        assert kfp.seen[0].get("authorization") == "Bearer s3cret"
        assert elsewhere.seen == []


# --- the snapshot covers exactly the files a build reads (issue 12, item 4) ----------------------


def shared_project(repo: Path, requirements: bool = True) -> Path:
    """digits/nbflow.yaml naming `../shared/demo.ipynb` and `../shared/requirements.txt`."""
    folder = write_project(repo, namespace=NS)
    (repo / "shared").mkdir()
    (folder / "base.ipynb").rename(repo / "shared" / "demo.ipynb")
    text = (folder / "nbflow.yaml").read_text(encoding="utf-8")
    text = text.replace("notebook: base.ipynb", "notebook: ../shared/demo.ipynb")
    if requirements:
        (repo / "shared" / "requirements.txt").write_text("numpy\n", encoding="utf-8")
        text = text.replace(
            "image: python:3.11-slim\n",
            "image: python:3.11-slim\nrequirements: ../shared/requirements.txt\n",
        )
    (folder / "nbflow.yaml").write_text(text, encoding="utf-8")
    return folder


def edit_shared_cell(repo: Path, source: str) -> None:
    path = repo / "shared" / "demo.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][6]["source"] = source
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


@pytest.mark.parametrize(
    "change",
    [
        "notebook-edited",
        "notebook-staged",
        "requirements-edited",
        "lock-untracked",
        "manifest-edited",
    ],
)
def test_an_uncommitted_file_the_build_reads_outside_the_folder_is_refused(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
    change: str,
) -> None:
    """`notebook: ../shared/demo.ipynb` edited and not committed once applied with exit 0,
    labelled with the clean commit, while the live version held the uncommitted cell."""
    folder = shared_project(repo)
    commit(repo)
    if change.startswith("notebook"):
        edit_shared_cell(
            repo, "model = SVC(C=3 * C, gamma=gamma, kernel=kernel).fit(X_train, y_train)"
        )
        if change == "notebook-staged":
            git(repo, "add", "shared/demo.ipynb")
    elif change == "requirements-edited":
        (repo / "shared" / "requirements.txt").write_text("numpy\npandas\n", encoding="utf-8")
    elif change == "lock-untracked":
        assert run(capsys, "lock", str(folder)).code == 0
    else:
        with (folder / "nbflow.yaml").open("a", encoding="utf-8") as f:
            f.write("# a comment\n")
    refused = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert refused.code == 2, refused.out
    assert "refusing to apply from a working tree that is not committed" in refused.err
    assert server.requests == [] and not (tmp_path / "dist").exists()


def test_an_ignored_notebook_is_not_committed_either(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    shared_project(repo, requirements=False)
    (repo / ".gitignore").write_text("dist/\nshared/\n", encoding="utf-8")
    commit(repo)
    assert "shared/demo.ipynb" not in git(repo, "ls-files")
    refused = run(capsys, *apply_args(kubeconfig, tmp_path))
    assert refused.code == 2 and "not committed" in refused.err


def test_files_the_build_does_not_read_leave_the_snapshot_clean(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    folder = shared_project(repo)
    commit(repo)
    (folder / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # untracked, not read
    (repo / "shared" / "notes.md").write_text("draft\n", encoding="utf-8")
    applied = run(capsys, *apply_args(kubeconfig, tmp_path, "--json"))
    assert applied.code == 0, applied.err
    (project,) = json.loads(applied.out)
    assert project["snapshot"] == git(repo, "rev-parse", "HEAD")[:12]


def test_dry_run_previews_an_uncommitted_tree(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    server: K8sServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    shared_project(repo)
    commit(repo)
    edit_shared_cell(repo, "model = SVC(C=4 * C, gamma=gamma, kernel=kernel).fit(X_train, y_train)")
    preview = run(capsys, *apply_args(kubeconfig, tmp_path, "--dry-run", "--json"))
    assert preview.code == 0, preview.err
    (project,) = json.loads(preview.out)
    assert project["dry_run"] is True and project["snapshot"].endswith("-dirty")
    assert [c["action"] for c in project["changes"]] == ["would-create", "would-create"]
    assert server.writes() == []


def test_diff_markdown_shows_names_and_messages_as_text() -> None:
    from markdown_it import MarkdownIt

    hostile = "[l](https://evil.example) ![i](https://e.x/i.png) <details>\x1b[31m | x"
    result = gitops.ProjectDiff(
        manifest="a <b>/nbflow.yaml",
        version="p-1",
        snapshot="abc",
        namespace="team-a",
        changes=(Change("Pipeline", "p", "team-a", "conflict", detail=hostile),),
        error=hostile,
    )
    html = MarkdownIt("commonmark").enable("table").render(render_markdown([result]))
    assert "<a " not in html and "<img" not in html and "<details" not in html
    assert "<b>" not in html and "\x1b" not in html
    assert html.count("<td>") == 5  # the `|` of the detail did not split its cell
