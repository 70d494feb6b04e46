"""Every command in the docs runs, so that the docs can't rot.

Commands are the `$ ` lines of ```console blocks in README.md, docs/*.md and examples/*/README.md.
Each file's commands run in order, in one fresh copy of the repository's examples, schemas and
test notebooks (inside a new git repository, as a user's would be), with a loopback Kubernetes
API server as the cluster. A command must exit 0 unless its line ends with `# exit N`.
Installation commands live in ```sh blocks: CI runs them itself (.ci/run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.k8s_server import K8sServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("*/README.md")]
)
_BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


def commands(doc: Path) -> list[tuple[str, int]]:
    out = []
    for block in _BLOCK.findall(doc.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if line.startswith("$ "):
                cmd = line[2:]
                m = _EXIT.search(cmd)
                out.append((_EXIT.sub("", cmd), int(m.group(1)) if m else 0))
    return out


DOCUMENTED = [d for d in DOCS if commands(d)]


def test_docs_have_commands() -> None:
    names = {d.relative_to(ROOT).as_posix() for d in DOCUMENTED}
    assert {"docs/tutorial.md", "docs/kale.md"} <= names


def _workspace(tmp: Path) -> Path:
    work = tmp / "repo"
    work.mkdir()
    for folder in ("examples", "schemas"):
        shutil.copytree(
            ROOT / folder, work / folder, ignore=shutil.ignore_patterns(".nbflow", "__pycache__")
        )
    shutil.copytree(ROOT / "tests" / "kale_cases", work / "tests" / "kale_cases")
    shutil.copytree(ROOT / "templates", work / "templates")
    for cmd in (
        ["init", "-q"],
        ["config", "user.email", "docs@example.com"],
        ["config", "user.name", "docs"],
        ["add", "-A"],
        ["commit", "-qm", "start"],
    ):
        subprocess.run(["git", *cmd], cwd=work, check=True)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_documented_commands_run(doc: Path, tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    bindir = Path(sys.executable).parent
    with K8sServer(namespaces=["default", "kubeflow-user"]) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="kubeflow-user")
        env = {
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(kubeconfig),
            "NO_COLOR": "1",
        }
        for cmd, expected in commands(doc):
            proc = subprocess.run(
                ["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=300
            )
            assert proc.returncode == expected, (
                f"`{cmd}` in {doc.name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
            assert "Traceback" not in proc.stderr, (
                f"`{cmd}` in {doc.name} printed a traceback:\n{proc.stderr[-3000:]}"
            )
