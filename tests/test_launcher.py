"""The Katib trial launcher against a loopback KFP API emulator (tests/support/kfp_server.py).

Each test runs the launcher as Katib runs it (a subprocess: `python -m nbflow.incluster.launcher`, or the
file alone) or in-process through `main(argv)`, and asserts its exit code, its stdout (the metric
lines), its stderr, and what the emulator received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbflow.check.experiment import LAUNCHER_COMMAND
from nbflow.incluster import launcher
from nbflow.incluster.launcher import HttpClient, KubeClient, main, parse_metric_lines, parse_param
from tests.support.kfp_server import KfpServer, RunScript, unused_port

ROOT = Path(__file__).resolve().parents[1]
NS = "kubeflow-user-example-com"
TOKEN = "s3cr3t-projected-token"
# Katib's StdOut collector filter (katib v0.19.0 pkg/metricscollector/v1beta1/common/const.go)
KATIB_FILTER = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def kfp() -> Iterator[KfpServer]:
    with KfpServer(namespace=NS) as server:
        yield server


@pytest.fixture
def pipeline(kfp: KfpServer) -> dict[str, Any]:
    found = kfp.add_pipeline("digits", namespace=NS)
    found["version"] = kfp.add_version(found["pipeline_id"], "digits-0a1b2c3d")
    return found


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def fast(kfp: KfpServer, tmp_path: Path, *extra: str) -> list[str]:
    """Arguments that point the launcher at the emulator and keep it quick."""
    return [
        "--host",
        kfp.url,
        "--kube-host",
        kfp.url,
        "--kube-token-path",
        str(tmp_path / "no-kube-token"),
        "--namespace",
        NS,
        "--poll-interval",
        "0.01",
        "--retries",
        "3",
        "--retry-backoff",
        "0.01",
        "--request-timeout",
        "5",
        "--run-name",
        "digits-trial-7",
        *extra,
    ]


def by_id(pipeline: dict[str, Any]) -> list[str]:
    return [
        "--pipeline-id",
        pipeline["pipeline_id"],
        "--version-id",
        pipeline["version"]["pipeline_version_id"],
    ]


def child_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy")
        and key not in ("KFP_HOST", "KUBERNETES_SERVICE_HOST", "KF_PIPELINES_SA_TOKEN_PATH")
    }
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def run_module(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbflow.incluster.launcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
        check=False,
    )


def assert_clean_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr


def wait_for(predicate: Any) -> None:
    """Poll until `predicate()` holds; a hang is ended by pytest-timeout, not by a clock here."""
    while not predicate():
        time.sleep(0.01)


# -- success ---------------------------------------------------------------------------------


def test_success_as_subprocess(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, token_file: Path
) -> None:
    kfp.require_token = TOKEN
    kfp.script(RunScript(metrics={"accuracy": 0.9733, "loss": "1.5e-02"}))
    args = fast(kfp, tmp_path, *by_id(pipeline), "--token-path", str(token_file))
    args += ["--param", "C=0.5", "--param", "kernel=rbf", "--param", "epochs=10"]
    args += ["--param", "shuffle=true", "--param", "layers=[64,32]", "--string-param", "seed=007"]
    args += ["--metric", "accuracy", "--metric", "loss"]

    result = run_module(args)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "accuracy=0.9733\nloss=0.015\n"
    for line in result.stdout.splitlines():  # what Katib's collector extracts
        name, value = KATIB_FILTER.fullmatch(line).group(1, 2)  # type: ignore[union-attr]
        assert float(value) == {"accuracy": 0.9733, "loss": 0.015}[name]
    (create,) = kfp.requests_to("POST", "/apis/v2beta1/runs")
    assert create.body == {
        "display_name": "digits-trial-7",
        "pipeline_version_reference": {
            "pipeline_id": pipeline["pipeline_id"],
            "pipeline_version_id": pipeline["version"]["pipeline_version_id"],
        },
        "runtime_config": {
            "parameters": {
                "C": 0.5,
                "kernel": "rbf",
                "epochs": 10,
                "shuffle": True,
                "layers": [64, 32],
                "seed": "007",
            }
        },
    }
    kfp_requests = [r for r in kfp.requests if r.path.startswith("/apis/")]
    assert kfp_requests and all(
        r.headers.get("authorization") == f"Bearer {TOKEN}" for r in kfp_requests
    )
    assert TOKEN not in result.stderr + result.stdout
    run_id = kfp.run_ids()[0]
    assert f"started run {run_id}" in result.stderr
    assert "SUCCEEDED" in result.stderr
    assert not any(KATIB_FILTER.search(line) for line in result.stderr.splitlines())
    (listing,) = kfp.requests_to("GET", f"/api/v1/namespaces/{NS}/pods")
    assert listing.query["labelSelector"] == [f"pipeline/runid={run_id},nbflow.dev/metrics=true"]
    (log,) = kfp.requests_to("GET", f"/api/v1/namespaces/{NS}/pods/.*/log")
    assert log.query["container"] == ["main"]


def test_success_in_process(
    kfp: KfpServer,
    pipeline: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kfp.script(RunScript(states=("RUNNING", "RUNNING", "SUCCEEDED"), metrics={"accuracy": 1}))

    code = main([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "accuracy=1.0\n"
    assert len(kfp.requests_to("GET", "/apis/v2beta1/runs/[^/]+")) == 3
    # no token file: no Authorization header
    assert all("authorization" not in r.headers for r in kfp.requests)


def test_standalone_package_directory_with_only_the_standard_library(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    # the image copies the launcher's package directory alone to /app/launcher and runs the
    # directory: run it with -I (no PYTHONPATH, no site-packages), so nothing of nbflow is found
    app = tmp_path / "app"
    shutil.copytree(
        ROOT / "nbflow" / "incluster" / "launcher",
        app / "launcher",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    kfp.script(RunScript(metrics={"accuracy": 0.5}))
    args = [*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"]

    result = subprocess.run(
        [sys.executable, "-I", "-S", str(app / "launcher"), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=child_env(),
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "accuracy=0.5\n"


def test_resolves_pipeline_and_version_by_name(
    kfp: KfpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.add_pipeline("digits", namespace="someone-else")
    mine = kfp.add_pipeline("digits", namespace=NS)
    kfp.add_version(mine["pipeline_id"], "digits-aaaa")
    wanted = kfp.add_version(mine["pipeline_id"], "digits-bbbb", display_name="Digits (b)")
    shared = kfp.add_pipeline("shared-digits", display_name="Shared digits")
    kfp.add_version(shared["pipeline_id"], "v1")

    by_name = ["--pipeline-name", "digits", "--version-name", "digits-bbbb"]
    assert main([*fast(kfp, tmp_path), *by_name]) == 0
    by_display = ["--pipeline-name", "digits", "--version-name", "Digits (b)"]
    assert main([*fast(kfp, tmp_path), *by_display]) == 0
    # not in the namespace: found among shared pipelines, by display name; latest version
    assert main([*fast(kfp, tmp_path), "--pipeline-name", "Shared digits"]) == 0

    first, second, third = (r.body for r in kfp.requests_to("POST", "/apis/v2beta1/runs"))
    expected = {
        "pipeline_id": mine["pipeline_id"],
        "pipeline_version_id": wanted["pipeline_version_id"],
    }
    assert first["pipeline_version_reference"] == expected
    assert second["pipeline_version_reference"] == expected
    assert third["pipeline_version_reference"] == {"pipeline_id": shared["pipeline_id"]}
    listing = kfp.requests_to("GET", "/apis/v2beta1/pipelines")[0]
    assert listing.query["namespace"] == [NS]
    assert json.loads(listing.query["filter"][0]) == {
        "predicates": [{"key": "name", "operation": "EQUALS", "string_value": "digits"}]
    }
    assert "latest version" in capsys.readouterr().err


def test_unknown_pipeline_name_is_a_usage_error(
    kfp: KfpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*fast(kfp, tmp_path), "--pipeline-name", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no pipeline called `nope`" in err
    assert_clean_error(err)
    assert not kfp.run_ids()


def test_experiment_by_name_is_created_once(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    args = [*fast(kfp, tmp_path, *by_id(pipeline)), "--experiment-name", "digits-tuning"]
    assert main(args) == 0
    assert main(args) == 0
    (created,) = kfp.requests_to("POST", "/apis/v2beta1/experiments")
    assert created.body == {"display_name": "digits-tuning", "namespace": NS}
    ids = {r.body["experiment_id"] for r in kfp.requests_to("POST", "/apis/v2beta1/runs")}
    assert len(ids) == 1


# -- the run does not succeed ------------------------------------------------------------------


def test_failed_run_exits_1_with_the_failed_task(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    kfp.script(
        RunScript(
            states=("PENDING", "RUNNING", "FAILED"),
            failed_task="train",
            error_message="task train: OOMKilled (exit code 137)",
        )
    )

    result = run_module([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    assert result.returncode == 1
    assert result.stdout == ""
    assert "ended FAILED" in result.stderr
    assert "failed tasks: train" in result.stderr
    assert "OOMKilled" in result.stderr
    assert_clean_error(result.stderr)
    assert not kfp.requests_to("GET", "/api/v1/.*")  # no metrics read for a failed run


def test_canceled_from_outside_exits_1(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    kfp.script(RunScript(states=("RUNNING",)))
    results: list[subprocess.CompletedProcess[str]] = []
    args = [*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"]
    worker = threading.Thread(target=lambda: results.append(run_module(args)))
    worker.start()
    wait_for(lambda: len(kfp.requests_to("GET", "/apis/v2beta1/runs/[^/]+")) >= 3)
    run_id = kfp.run_ids()[0]
    kfp.set_state(run_id, "CANCELING")
    time.sleep(0.05)
    kfp.set_state(run_id, "CANCELED")
    worker.join(timeout=20)

    (result,) = results
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"run {run_id} ended CANCELED" in result.stderr
    assert not kfp.requests_to("POST", ".*:terminate")


def test_timeout_terminates_the_run(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    kfp.script(RunScript(states=("PENDING", "RUNNING")))

    result = run_module(
        [*fast(kfp, tmp_path, *by_id(pipeline)), "--timeout", "0.4", "--metric", "accuracy"]
    )

    assert result.returncode == 1
    run_id = kfp.run_ids()[0]
    assert len(kfp.requests_to("POST", f"/apis/v2beta1/runs/{run_id}:terminate")) == 1
    assert "timed out after 0.4 s" in result.stderr
    assert_clean_error(result.stderr)
    assert kfp._run_view(kfp.runs[run_id], advance=False)["state"] == "CANCELING"


def test_sigterm_terminates_the_run(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    # Katib deletes an early-stopped trial's Job: the launcher gets SIGTERM
    kfp.script(RunScript(states=("RUNNING",)))
    args = [*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"]
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow.incluster.launcher", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    try:
        wait_for(lambda: len(kfp.requests_to("GET", "/apis/v2beta1/runs/[^/]+")) >= 2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130
    assert out == ""
    assert "Traceback" not in err
    run_id = kfp.run_ids()[0]
    assert len(kfp.requests_to("POST", f"/apis/v2beta1/runs/{run_id}:terminate")) == 1


def test_orphaned_launcher_terminates_the_run(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    # Katib wraps the launcher in `sh -c "... 1>log 2>&1 && ..."`; deleting the trial's Job
    # signals that shell, which dies without passing the signal on
    kfp.script(RunScript(states=("RUNNING",)))
    args = [*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"]
    command = " ".join([sys.executable, "-m", "nbflow.incluster.launcher", *args]) + " && true"
    shell = subprocess.Popen(
        ["sh", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    try:
        wait_for(lambda: len(kfp.requests_to("GET", "/apis/v2beta1/runs/[^/]+")) >= 2)
        shell.kill()
        _, err = shell.communicate(timeout=10)  # returns once the orphaned launcher exits
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.communicate()

    run_id = kfp.run_ids()[0]
    assert len(kfp.requests_to("POST", f"/apis/v2beta1/runs/{run_id}:terminate")) == 1
    assert "the process that started the launcher has exited" in err
    assert "Traceback" not in err


# -- metrics -------------------------------------------------------------------------------------


def test_missing_metric_exits_1(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.script(RunScript(metrics={"accuracy": 0.91}))

    code = main([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy", "--metric", "f1"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""  # all or nothing: Katib must not see a partial trial
    assert "no metric line for f1" in err
    assert_clean_error(err)


def test_cached_metrics_step_has_no_pod(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.script(RunScript(metrics=None))

    code = main([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    assert code == 1
    assert "cached" in capsys.readouterr().err


def test_non_finite_metric_exits_1(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.script(RunScript(metrics={"accuracy": "nan"}))

    code = main([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    assert code == 1
    assert "not a finite number" in capsys.readouterr().err


def test_unlabelled_metrics_pod_falls_back_to_every_pod_of_the_run(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.script(RunScript(metrics={"accuracy": 0.88}, metrics_labelled=False))

    code = main([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "accuracy=0.88\n"  # the driver's decoy line is not a metric line
    assert "reading the logs of all 2 pods" in err


def test_read_metrics_reads_the_runs_labelled_pod(kfp: KfpServer, pipeline: dict[str, Any]) -> None:
    kfp.script(
        RunScript(metrics={"accuracy": 0.7}), RunScript(metrics={"accuracy": 0.8, "loss": 2})
    )
    client = launcher.KfpClient(HttpClient(kfp.url))
    body = {"pipeline_id": pipeline["pipeline_id"], "version_id": None, "experiment_id": None}
    first = client.create_run(display_name="a", parameters={}, **body)
    second = client.create_run(display_name="b", parameters={}, **body)
    kube = KubeClient(HttpClient(kfp.url, name="Kubernetes API"), NS)

    assert launcher.read_metrics(kube, first, ["accuracy"]) == {"accuracy": 0.7}
    assert launcher.read_metrics(kube, second, ["loss", "accuracy"]) == {
        "loss": 2.0,
        "accuracy": 0.8,
    }
    assert launcher.read_metrics(kube, second, []) == {}


def test_parse_metric_lines_last_value_wins_and_lines_are_strict() -> None:
    lines = [
        "accuracy=0.1",
        "epoch 3 accuracy=0.5 loss=2",  # not a line of its own
        "  accuracy = 0.9  ",
        "accuracy-top5=0.99",
        "loss=abc",
    ]
    assert parse_metric_lines(lines, ["accuracy", "loss", "f1"]) == {
        "accuracy": "0.9",
        "loss": "abc",
    }


# -- retries and unreachable APIs ----------------------------------------------------------------


def test_503_twice_then_success(kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path) -> None:
    kfp.fail("POST", "/apis/v2beta1/runs", 503, times=2)
    kfp.fail("GET", "/apis/v2beta1/runs/[^/]+", 429, times=1, retry_after="0")
    kfp.fail("GET", f"/api/v1/namespaces/{NS}/pods", None, times=1)  # connection reset
    kfp.script(RunScript(metrics={"accuracy": 0.75}))

    result = run_module([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    assert result.returncode == 0, result.stderr
    assert result.stdout == "accuracy=0.75\n"
    assert len(kfp.requests_to("POST", "/apis/v2beta1/runs")) == 3
    assert len(kfp.run_ids()) == 1
    assert "answered HTTP 503" in result.stderr
    assert "answered HTTP 429" in result.stderr
    assert "retry 1 of 3" in result.stderr


def test_persistent_500_gives_up_and_terminates(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    kfp.fail(
        "GET",
        "/apis/v2beta1/runs/[^/]+",
        500,
        times=None,
        body={"code": 13, "message": "Internal error: failed to get run: database is locked"},
    )

    result = run_module([*fast(kfp, tmp_path, *by_id(pipeline)), "--metric", "accuracy"])

    assert result.returncode == 2
    assert "answered HTTP 500 to GET /apis/v2beta1/runs/" in result.stderr
    assert (
        "after 4 attempts: Internal error: failed to get run: database is locked" in result.stderr
    )
    assert_clean_error(result.stderr)
    assert len(kfp.requests_to("GET", "/apis/v2beta1/runs/[^/]+")) == 4
    assert len(kfp.requests_to("POST", ".*:terminate")) == 1


def test_4xx_is_not_retried(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp.require_token = TOKEN  # and the launcher has none

    code = main(fast(kfp, tmp_path, *by_id(pipeline)))

    err = capsys.readouterr().err
    assert code == 2
    assert "answered HTTP 401 to POST /apis/v2beta1/runs: Failed to authenticate" in err
    assert len(kfp.requests) == 1
    assert_clean_error(err)


def test_unreachable_host_exits_2_without_traceback(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    args = ["--host", dead, "--pipeline-id", "p", "--version-id", "v", "--retries", "1"]
    args += ["--retry-backoff", "0.01", "--kube-host", dead, "--metric", "accuracy"]

    result = run_module(args)

    assert result.returncode == 2
    assert "cannot reach KFP API at http://127.0.0.1:" in result.stderr
    assert "after 2 attempts" in result.stderr
    assert_clean_error(result.stderr)


def test_token_is_reread_on_each_request(kfp: KfpServer, token_file: Path) -> None:
    client = HttpClient(kfp.url, token_path=str(token_file))
    client.json("GET", "/apis/v2beta1/healthz")
    token_file.write_text("rotated-token")
    client.json("GET", "/apis/v2beta1/healthz")
    token_file.unlink()
    client.json("GET", "/apis/v2beta1/healthz")

    sent = [r.headers.get("authorization") for r in kfp.requests]
    assert sent == [f"Bearer {TOKEN}", "Bearer rotated-token", None]


# -- usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--pipeline-id", "a", "--pipeline-name", "b"],
        [],
        ["--pipeline-id", "a", "--param", "no-value"],
        ["--pipeline-id", "a", "--timeout", "soon"],
        ["--pipeline-id", "a", "--version-id", "v", "--version-name", "w"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert "usage:" in capsys.readouterr().err


def test_metrics_need_a_kubernetes_api(
    kfp: KfpServer,
    pipeline: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    args = [
        "--host",
        kfp.url,
        *by_id(pipeline),
        "--metric",
        "accuracy",
        "--token-path",
        "/nonexistent",
    ]

    assert main(args) == 2
    assert "pass --kube-host" in capsys.readouterr().err
    assert not kfp.run_ids()  # checked before starting a run


@pytest.mark.parametrize("host", ["ftp://kfp", "http://kfp:port", "kfp:8888", "http://"])
def test_bad_host_url_is_a_usage_error(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", host, "--pipeline-id", "p", "--token-path", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "is not an http(s) URL" in err
    assert_clean_error(err)


def test_dockerfile_copies_the_launcher_alone_and_runs_it_as_non_root() -> None:
    text = (ROOT / "launcher" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim\S*$", text, re.MULTILINE)
    copies = re.findall(r"^COPY .*$", text, re.MULTILINE)
    # 0555, not 0444: BuildKit applies --chmod to the copied directories too, which need x
    assert copies == ["COPY --chmod=0555 nbflow/incluster/launcher/ /app/launcher/"]
    ignored = (ROOT / "launcher" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**/__pycache__" in ignored  # the image holds the package's sources as in git
    user = re.search(r"^USER (\d+)(?::\d+)?$", text, re.MULTILINE)
    assert user is not None and int(user.group(1)) != 0
    # the image runs what a trial's container is told to run
    assert f"ENTRYPOINT {json.dumps(list(LAUNCHER_COMMAND))}" in text
    assert LAUNCHER_COMMAND == ("python", "/app/launcher")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C=0.5", ("C", 0.5)),
        ("epochs=10", ("epochs", 10)),
        ("shuffle=true", ("shuffle", True)),
        ("kernel=rbf", ("kernel", "rbf")),
        ('name="quoted"', ("name", "quoted")),
        ("layers=[64, 32]", ("layers", [64, 32])),
        ('cfg={"a": 1}', ("cfg", {"a": 1})),
        ("x=NaN", ("x", "NaN")),
        ("expr=a=b", ("expr", "a=b")),
        ("empty=", ("empty", "")),
    ],
)
def test_parse_param(text: str, expected: tuple[str, Any]) -> None:
    assert parse_param(text) == expected


# -- the emulator's answers have the API's shapes -------------------------------------------------


def _check_shape(value: Any, type_name: str, where: str) -> None:
    import kfp_server_api

    if value is None or type_name in ("object", "str", "int", "bool", "float", "datetime"):
        return
    if type_name.startswith("list["):
        for index, item in enumerate(value):
            _check_shape(item, type_name[5:-1], f"{where}[{index}]")
        return
    if type_name.startswith("dict("):
        inner = type_name[type_name.index(",") + 2 : -1]
        for key, item in value.items():
            _check_shape(item, inner, f"{where}.{key}")
        return
    model = getattr(kfp_server_api.models, type_name)
    if not model.openapi_types:  # an enum
        allowed = {v for k, v in vars(model).items() if k.isupper()}
        assert value in allowed, f"{where}: {value!r} is not a {type_name}"
        return
    assert isinstance(value, dict), where
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        assert key in by_json, f"{where}: {key} is not a field of {type_name}"
        _check_shape(item, model.openapi_types[by_json[key]], f"{where}.{key}")


def test_emulator_answers_have_kfp_server_api_shapes(
    kfp: KfpServer, pipeline: dict[str, Any], tmp_path: Path
) -> None:
    kfp.script(RunScript(states=("RUNNING", "FAILED"), failed_task="train", error_message="boom"))
    assert main(fast(kfp, tmp_path, *by_id(pipeline), "--experiment-name", "e")) == 1
    client = HttpClient(kfp.url)
    run_id = kfp.run_ids()[0]
    answers = {
        "V2beta1Run": client.json("GET", f"/apis/v2beta1/runs/{run_id}"),
        "V2beta1ListPipelinesResponse": client.json(
            "GET", "/apis/v2beta1/pipelines", query={"namespace": NS}
        ),
        "V2beta1ListPipelineVersionsResponse": client.json(
            "GET", f"/apis/v2beta1/pipelines/{pipeline['pipeline_id']}/versions"
        ),
        "V2beta1ListExperimentsResponse": client.json(
            "GET", "/apis/v2beta1/experiments", query={"namespace": NS}
        ),
        "GoogleRpcStatus": json.loads(kfp.handle("GET", "/apis/v2beta1/runs/nope", {}, {}, b"")[1]),
    }
    for type_name, answer in answers.items():
        _check_shape(answer, type_name, type_name)
    assert answers["V2beta1Run"]["run_details"]["task_details"]
