"""Installs proportional to the job: `pip install nbflow` is what validating needs, the extras
(build, run, tune, deploy, all) add the rest; nbflow/extras.py's table agrees with pyproject,
the commands of the core import no extra's module, and a missing extra is one clear line."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

from nbflow.cli.main import COMMAND_EXTRAS, COMMANDS, EXIT_INTERNAL, EXIT_USAGE
from nbflow.extras import EXTRAS, MissingExtra, extra_of, missing, require
from tests.support import blocked_imports
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
JOBS = ("build", "run", "tune", "deploy")

# What no command of the core may import: every extra's modules, and the big packages they bring
# that `pip install nbflow` does not (checked below against the installed dependency tree).
BROUGHT_BY_EXTRAS = (
    "kfp_server_api",  # kfp
    "google",  # kfp: protobuf, google-auth, google-cloud-storage
    "yaml",  # kfp, kubernetes
    "urllib3",
    "requests",
    "jupyter_client",  # ipykernel
    "zmq",
    "tornado",
    "sqlalchemy",  # optuna
)
BLOCKED = sorted(
    {module for extra in EXTRAS.values() for module in extra.modules.values()}
    | set(BROUGHT_BY_EXTRAS)
)


def _requirements(extra: str | None) -> list[Requirement]:
    listed = (
        PYPROJECT["dependencies"] if extra is None else PYPROJECT["optional-dependencies"][extra]
    )
    return [Requirement(r) for r in listed]


def _split(extra: str) -> tuple[set[str], set[str]]:
    """(the extras it includes, the distributions it adds) as pyproject lists them."""
    includes: set[str] = set()
    dists: set[str] = set()
    for r in _requirements(extra):
        if canonicalize_name(r.name) == "nbflow":
            includes |= r.extras
        else:
            dists.add(canonicalize_name(r.name))
    return includes, dists


# -- the table and pyproject ----------------------------------------------------------------------


@pytest.mark.parametrize("extra", JOBS)
def test_each_job_extra_of_pyproject_is_the_table(extra: str) -> None:
    includes, dists = _split(extra)
    assert includes == set(EXTRAS[extra].includes)
    assert dists == {canonicalize_name(d) for d in EXTRAS[extra].modules}


def test_pyproject_has_the_table_s_extras_and_all_of_them() -> None:
    optional = PYPROJECT["optional-dependencies"]
    assert set(EXTRAS) == set(JOBS) and set(JOBS) <= set(optional)
    assert _split("all") == (set(JOBS), set())
    # what runs the examples, JupyterLab's Run button and the tests include a job's extra
    assert "run" in _split("examples")[0] and "run" in _split("lab")[0]
    assert {"all", "examples", "lab", "torch"} <= _split("dev")[0]


def test_the_core_names_no_extra_s_distribution() -> None:
    core = {canonicalize_name(r.name) for r in _requirements(None)}
    in_extras = {canonicalize_name(d) for e in EXTRAS.values() for d in e.modules}
    assert not core & in_extras
    assert "ipython" in core  # the data-flow analysis reads IPython syntax through it


@pytest.mark.parametrize(
    ("dist", "module"), [(d, m) for e in EXTRAS.values() for d, m in e.modules.items()]
)
def test_each_module_of_the_table_is_its_distribution_s(dist: str, module: str) -> None:
    files = importlib.metadata.distribution(dist).files or []
    path = module.replace(".", "/")
    assert any(str(f) in (f"{path}/__init__.py", f"{path}.py") for f in files), (dist, module)


def _closure(names: list[str]) -> set[str]:
    """The installed distributions that `names` need, transitively, without extras."""
    seen: set[str] = set()
    todo = list(names)
    env = {**default_environment(), "extra": ""}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            r = Requirement(text)
            if r.marker is None or r.marker.evaluate(env):
                todo.append(r.name)
    return seen


def test_what_the_core_tests_refuse_is_not_what_the_core_installs() -> None:
    core = _closure([r.name for r in _requirements(None)])
    provided = importlib.metadata.packages_distributions()
    for module in BLOCKED:
        top = module.split(".")[0]
        owners = {canonicalize_name(d) for d in provided.get(top, [])}
        assert owners and not owners & core, (module, owners & core)


# -- the check --------------------------------------------------------------------------------


def test_with_everything_installed_nothing_is_missing() -> None:
    for extra in EXTRAS:
        assert missing(extra) == []
        require(extra, "`nbflow build`")


def test_require_names_the_extra_and_the_first_missing_distribution(monkeypatch) -> None:
    from nbflow.extras import Extra

    monkeypatch.setitem(
        EXTRAS, "build", Extra((), {"kfp": "kfp", "no-such-dist": "no_such_module.sub"})
    )
    assert missing("build") == ["no-such-dist"] and missing("tune") == ["no-such-dist"]
    with pytest.raises(MissingExtra) as raised:
        require("tune", "`nbflow tune`")
    assert (raised.value.extra, raised.value.distribution) == ("tune", "no-such-dist")
    assert str(raised.value) == (
        "`nbflow tune` needs the 'tune' extra (no-such-dist is not installed): "
        "pip install 'nbflow[tune]'"
    )


def test_extra_of_names_the_most_specific_distribution() -> None:
    assert extra_of("kfp.kubernetes.common") == ("build", "kfp-kubernetes")
    assert extra_of("kfp.dsl") == ("build", "kfp")
    assert extra_of("optuna.samplers") == ("tune", "optuna")
    assert extra_of("kubernetes") == ("deploy", "kubernetes")
    assert extra_of("kfpx") is None and extra_of("numpy") is None and extra_of(None) is None


def test_an_extra_s_module_missing_where_no_check_foresaw_it(capsys, monkeypatch) -> None:
    def needs_optuna(args) -> int:  # type: ignore[no-untyped-def]
        raise ModuleNotFoundError("No module named 'optuna'", name="optuna.samplers")

    monkeypatch.setitem(COMMANDS, "schema", needs_optuna)
    r = run_cli(capsys, "schema")
    assert r.code == EXIT_USAGE
    assert r.err == (
        "nbflow: `nbflow schema` needs the 'tune' extra (optuna is not installed): "
        "pip install 'nbflow[tune]'\n"
    )

    def needs_something_else(args) -> int:  # type: ignore[no-untyped-def]
        raise ModuleNotFoundError("No module named 'nosuch'", name="nosuch")

    monkeypatch.setitem(COMMANDS, "schema", needs_something_else)
    r = run_cli(capsys, "schema")
    assert r.code == EXIT_INTERNAL and r.err.startswith("nbflow: internal error (please report)")


# -- the commands, as a user without the extras runs them ---------------------------------------


def _project(root: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "digits", root / "digits")
    shutil.copytree(ROOT / "examples" / "sales", root / "sales")
    (root / "kale").mkdir()
    shutil.copy(ROOT / "tests" / "kale_cases" / "kale-full" / "churn.ipynb", root / "kale")
    (root / "fresh").mkdir()
    shutil.copy(ROOT / "examples" / "digits" / "digits.ipynb", root / "fresh" / "nb.ipynb")
    return root


def _insert_a_cell(root: Path) -> None:
    path = root / "digits" / "digits.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A note", id="inserted-note"))
    nbformat.write(nb, path)


# every command that `pip install nbflow` serves alone, in an order where each has work to do
CORE_COMMANDS: list[tuple[str, ...]] = [
    ("validate", "--format", "json", "."),
    ("validate", "--format", "sarif", "digits"),
    ("graph", "--format", "mermaid", "digits"),
    ("graph", "sales"),
    ("lock", "."),
    ("cells", "digits/digits.ipynb"),
    ("explain", "NBF302"),
    ("explain",),
    ("schema",),
    ("init", "fresh/nb.ipynb", "--name", "fresh"),
    ("init", "kale/churn.ipynb", "--name", "churn"),
    ("init", "--ci", "github", "--root", "."),
    ("runs", "list", "digits"),
    ("completion", "bash"),
    ("validate", "."),  # what init wrote too
]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
def test_the_core_commands_need_no_extra_and_do_the_same_without(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    """Each command, in a fresh interpreter where every extra's packages are refused, tries to
    import none of them and prints and writes what it does with everything installed."""
    full, core = _project(tmp_path / "full"), _project(tmp_path / "core")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    steps = [*CORE_COMMANDS, ("insert a cell",), ("lock", "--fix", "."), ("validate", ".")]
    outs: dict[tuple[str, ...], str] = {}
    for argv in steps:
        if argv == ("insert a cell",):
            _insert_a_cell(full)
            _insert_a_cell(core)
            continue
        monkeypatch.chdir(full)
        expected = run_cli(capsys, *argv)
        done = blocked_imports.run(BLOCKED, *argv, cwd=core)
        assert blocked_imports.refused(done.stderr) == set(), argv
        assert (done.returncode, done.stdout, blocked_imports.without_report(done.stderr)) == (
            expected.code,
            expected.out,
            expected.err,
        ), argv
        outs[argv] = done.stdout
    assert "fixed: digits/nbflow.yaml" in outs[("lock", "--fix", ".")]
    assert "wrote" in outs[("init", "kale/churn.ipynb", "--name", "churn")]
    assert _tree(core) == _tree(full)
    assert json.loads((core / "digits" / "nbflow.lock.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "refuse", "message"),
    [
        (
            ("build", "digits"),
            ["kfp"],
            "`nbflow build` needs the 'build' extra (kfp is not installed): "
            "pip install 'nbflow[build]'",
        ),
        (
            ("run", "digits"),
            ["cloudpickle"],
            "`nbflow run` needs the 'run' extra (cloudpickle is not installed): "
            "pip install 'nbflow[run]'",
        ),
        (
            ("tune", "sales"),
            ["optuna"],
            "`nbflow tune` needs the 'tune' extra (optuna is not installed): "
            "pip install 'nbflow[tune]'",
        ),
        (
            ("diff", "digits"),
            ["kubernetes"],
            "`nbflow diff` needs the 'deploy' extra (kubernetes is not installed): "
            "pip install 'nbflow[deploy]'",
        ),
        (  # two builds compared: the compiler, no cluster
            ("diff", "--base", "HEAD", "digits"),
            ["kfp"],
            "`nbflow diff --base` needs the 'build' extra (kfp is not installed): "
            "pip install 'nbflow[build]'",
        ),
        (
            ("ci", "deploy", "digits"),
            ["kubernetes"],
            "`nbflow ci deploy` needs the 'deploy' extra (kubernetes is not installed): "
            "pip install 'nbflow[deploy]'",
        ),
        (
            ("apply", "--dry-run", "digits"),
            BLOCKED,
            "`nbflow apply` needs the 'deploy' extra (kfp is not installed): "
            "pip install 'nbflow[deploy]'",
        ),
    ],
)
def test_a_command_without_its_extra_says_which_in_one_line(
    tmp_path: Path, argv: tuple[str, ...], refuse: list[str], message: str
) -> None:
    root = _project(tmp_path)
    done = blocked_imports.run(refuse, *argv, cwd=root)
    assert done.returncode == EXIT_USAGE
    assert blocked_imports.without_report(done.stderr) == f"nbflow: {message}\n"
    assert done.stdout == ""
    assert not (root / "dist").exists() and not (root / "digits" / ".nbflow").exists()


@pytest.mark.slow
def test_the_api_without_an_extra_raises_missing_extra(tmp_path: Path) -> None:
    code = (
        "from nbflow import api\n"
        "from nbflow.extras import MissingExtra\n"
        "try:\n"
        "    api.build('digits', out='dist')\n"
        "except MissingExtra as exc:\n"
        "    print(type(exc).__name__, exc.extra, exc.distribution)\n"
    )
    done = blocked_imports.run(["git"], "-c", code, cwd=_project(tmp_path))
    assert done.stdout == "MissingExtra build gitpython\n", done.stderr


# -- what the hooks and actions install ---------------------------------------------------------


def test_the_pre_commit_hooks_install_the_core_only() -> None:
    from nbflow.cli.main import parser

    hooks = YAML(typ="safe").load(ROOT / ".pre-commit-hooks.yaml")
    assert {h["id"] for h in hooks} == {"nbflow-validate", "nbflow-lock-fix"}
    for hook in hooks:
        # pre-commit installs the repository as `pip install .`: the core, and nothing else
        assert hook["language"] == "python" and "additional_dependencies" not in hook
        argv = [*hook["entry"].split()[1:], *hook["args"]]
        assert parser().parse_args(argv).command not in COMMAND_EXTRAS


def _install_step(action: str) -> dict[str, object]:
    doc = YAML(typ="safe").load(ROOT / "github-actions" / action / "action.yml")
    (step,) = [s for s in doc["runs"]["steps"] if s.get("name") == "Install nbflow"]
    return dict(step)


def _pip_argument(action: str, tmp_path: Path, env: dict[str, str]) -> str:
    """What the action's Install step passes to pip, the step's script run by bash with a
    `python` on PATH that records its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    python = fake / "python"
    python.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done > "$RECORD"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "argv"
    step = _install_step(action)
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITHUB_BASE_REF")}
    subprocess.run(
        ["bash", "-e", "-c", str(step["run"])],
        env={
            **base,
            "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
            "RECORD": str(record),
            "GITHUB_ACTION_PATH": "/actions/validate",
            "NBFLOW_VERSION": "",
            "NBFLOW_RUN": "false",
            "NBFLOW_KUBECONFIG": "",
            **env,
        },
        check=True,
    )
    return record.read_text().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "argument"),
    [
        ({}, "/actions/validate/../.."),  # a push: validating only
        ({"NBFLOW_VERSION": "0.2.0"}, "nbflow==0.2.0"),
        ({"GITHUB_BASE_REF": "main"}, "/actions/validate/../..[build]"),  # compared with the base
        ({"NBFLOW_BASE_REF": "v1"}, "/actions/validate/../..[build]"),
        ({"GITHUB_BASE_REF": "main", "NBFLOW_RUN": "true"}, "/actions/validate/../..[run]"),
        ({"NBFLOW_RUN": "true", "NBFLOW_VERSION": "0.2.0"}, "nbflow[run]==0.2.0"),
        ({"NBFLOW_KUBECONFIG": "kc"}, "/actions/validate/../..[deploy]"),
        ({"KUBECONFIG": "kc", "NBFLOW_RUN": "true"}, "/actions/validate/../..[run,deploy]"),
    ],
)
def test_the_validate_action_installs_what_its_job_needs(
    tmp_path: Path, env: dict[str, str], argument: str
) -> None:
    assert _pip_argument("validate", tmp_path, env) == argument


def test_the_validate_action_s_install_step_reads_its_inputs_from_the_environment() -> None:
    step_env = _install_step("validate")["env"]
    assert step_env == {
        "NBFLOW_VERSION": "${{ inputs.nbflow-version }}",
        "NBFLOW_RUN": "${{ inputs.run }}",
        "NBFLOW_KUBECONFIG": "${{ inputs.kubeconfig }}",
    }


@pytest.mark.parametrize(
    ("env", "argument"),
    [({}, "/actions/validate/../..[deploy]"), ({"NBFLOW_VERSION": "1.0"}, "nbflow[deploy]==1.0")],
)
def test_the_deploy_action_installs_the_deploy_extra(
    tmp_path: Path, env: dict[str, str], argument: str
) -> None:
    assert _pip_argument("deploy", tmp_path, env) == argument


def test_ci_installs_dev_and_the_readme_s_first_command_the_examples() -> None:
    assert 'pip install --quiet -e ".[dev]"' in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    first = next(line for line in readme.splitlines() if "pip install" in line)
    assert 'pip install -e ".[examples]" && nbflow run examples/digits' in first
    assert "run" in _split("examples")[0]
