"""JupyterLab with nbflow's extensions, on loopback, for browser tests and screenshots.

    with jupyter_lab(root) as lab:          # a free port, a random token, its own config
        page.goto(lab.url("lab/tree/demo/nb.ipynb"))

The lab finds the prebuilt extension (nbflow/lab/labextension) and the server extension's
config (jupyter-config/) through JUPYTER_PATH and JUPYTER_CONFIG_PATH, as a `pip install
"nbflow[lab]"` would lay them out, and keeps its settings and workspaces in a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Lab:
    port: int
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def jupyter_lab(root: Path, *, timeout: float = 120) -> Iterator[Lab]:
    home = Path(tempfile.mkdtemp(prefix="nbflow-lab-home-"))
    data = home / "data"
    (data / "labextensions").mkdir(parents=True)
    (data / "labextensions" / "nbflow-lab").symlink_to(REPO / "nbflow" / "lab" / "labextension")
    config = home / "etc" / "jupyter"
    shutil.copytree(REPO / "jupyter-config", config)
    # no "receive Jupyter news?" toast over the screenshots
    (config / "labconfig").mkdir()
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(data),
        "JUPYTER_CONFIG_PATH": str(config),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "user-data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    log = home / "jupyter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        lab = Lab(port, token, log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(lab.url("api/status"), timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + log.read_text()) from None
                time.sleep(0.5)
        yield lab
    finally:
        _stop(proc, port, token)
        shutil.rmtree(home, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes], port: int, token: str) -> None:
    """Shut the server down as its own API does (kernels included), else by signal."""
    if proc.poll() is None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/shutdown",
            method="POST",
            headers={"Authorization": f"token {token}"},
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).close()
    for stop in (lambda: None, proc.terminate, proc.kill):
        stop()
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def chromium_path() -> str:
    """Debian's chromium: playwright cannot download its own browser here."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`)"
        )
    return CHROMIUM


LAB_SOURCES = REPO / "lab"
SOURCE_HASH = REPO / "nbflow" / "lab" / "labextension" / "sources.sha256"


def source_hash() -> str:
    """SHA-256 over the extension's sources (lab/package.json, tsconfig, src/, style/), which
    lab/build.sh records beside the prebuilt extension it builds from them."""
    import hashlib

    digest = hashlib.sha256()
    files = [LAB_SOURCES / "package.json", LAB_SOURCES / "tsconfig.json"]
    files += sorted(
        p for d in ("src", "style") for p in (LAB_SOURCES / d).rglob("*") if p.is_file()
    )
    for path in files:
        digest.update(path.relative_to(LAB_SOURCES).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":  # lab/build.sh: python -m tests.support.lab --record
    if sys.argv[1:] == ["--record"]:
        SOURCE_HASH.write_text(source_hash() + "\n")
