"""nbflow.deploy.redact: a kubeconfig's credentials found in every way it can be written, and
kept out of what libraries log while nbflow talks to a cluster."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from nbflow.deploy.redact import REDACTED, Redactor, read_kubeconfig_secrets
from tests.support.cases import CASES
from tests.support.cli import run_subprocess
from tests.support.k8s_server import K8sServer

VALID = CASES / "valid" / "minimal"

BLOCK = """\
apiVersion: v1
kind: Config
users:
- name: block
  user:
    token: |
      line-one-secret
      line-two-secret
    client-key-data: S0VZLURBVEEtc2VjcmV0
    client-certificate-data: Q0VSVC1EQVRB
    password: "p@ss: word"
- name: oidc
  user:
    auth-provider:
      name: oidc
      config:
        client-id: kubernetes
        client-secret: oidc-client-secret
        id-token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln
        refresh-token: oidc-refresh-token
        idp-issuer-url: https://issuer.example
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: get-token
      env:
      - {name: CLOUD_SECRET, value: exec-env-secret}
      - name: REGION
        value: eu-west-1
"""
FLOW = "{users: [{name: f, user: {token: flow-token-5678, password: flow-password}}]}"
JSON = json.dumps({"users": [{"name": "j", "user": {"token": "json-token-1234"}}]})


def test_every_credential_of_a_block_style_kubeconfig() -> None:
    secrets = set(read_kubeconfig_secrets(BLOCK))
    assert secrets >= {
        "line-one-secret\nline-two-secret",
        "line-one-secret",
        "line-two-secret",
        "S0VZLURBVEEtc2VjcmV0",
        "Q0VSVC1EQVRB",
        "p@ss: word",
        "oidc-client-secret",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "oidc-refresh-token",
        "exec-env-secret",
        "eu-west-1",  # an exec plugin's env may hold anything: every value is masked
    }
    assert "|" not in secrets and "kubernetes" not in secrets and "get-token" not in secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FLOW, {"flow-token-5678", "flow-password"}),
        (JSON, {"json-token-1234"}),
        ("- a list", set()),
        # not YAML (a tab, an unclosed bracket): what looks like a credential, still
        (
            "users:\n\t- user: {token: broken-token-1, password: 'pw-in-quotes}",
            {"broken-token-1", "pw-in-quotes"},
        ),
        ("not: [a kubeconfig", set()),
    ],
    ids=["flow", "json", "list", "not-yaml", "not-yaml-no-secret"],
)
def test_flow_style_and_json_kubeconfigs(text: str, expected: set[str]) -> None:
    assert set(read_kubeconfig_secrets(text)) == expected


def test_the_redactor_hides_known_values_and_credential_shapes() -> None:
    redact = Redactor(["exec-env-secret", "ab"])  # too short to be told from words: ignored
    text = (
        "plugin said exec-env-secret; Authorization: Bearer abcdefgh.ijkl-mnop "
        'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig {"access_token": "opaque-value-1"} '
        "password=hunter22 and a cab"
    )
    out = redact(text)
    for secret in (
        "exec-env-secret",
        "abcdefgh.ijkl-mnop",
        "eyJhbGci",
        "opaque-value-1",
        "hunter22",
    ):
        assert secret not in out
    assert out.count(REDACTED) == 5 and "Bearer ***" in out and out.endswith("and a cab")


@pytest.mark.slow
def test_an_exec_plugin_printing_its_token_leaves_no_trace_in_nbflows_output(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    text = (VALID / "nbflow.yaml").read_text(encoding="utf-8")
    # the notebook beside it: outside git, a manifest names only files of its own folder
    shutil.copy(CASES / "notebooks" / "base.ipynb", project / "base.ipynb")
    (project / "nbflow.yaml").write_text(text.replace("../../notebooks/", ""), encoding="utf-8")
    plugin = tmp_path / "get-token"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "sys.stderr.write('login failed for ' + os.environ['CLOUD_SECRET'] +"
        " ' with Authorization: Bearer leaked-bearer-token-1\\n')\n"
        "sys.exit(1)\n",
        encoding="utf-8",
    )
    plugin.chmod(0o755)
    with K8sServer(namespaces=["team-a"]) as server:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server.url}}],
            "users": [
                {
                    "name": "u",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": str(plugin),
                            "env": [{"name": "CLOUD_SECRET", "value": "exec-env-secret-42"}],
                        }
                    },
                }
            ],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        kubeconfig = tmp_path / "kubeconfig.json"
        kubeconfig.write_text(json.dumps(config), encoding="utf-8")  # JSON is a kubeconfig too
        r = run_subprocess("diff", "--kubeconfig", str(kubeconfig), str(project), cwd=tmp_path)
    output = r.out + r.err
    assert "login failed for ***" in output, output  # the library's log line, redacted
    assert "exec-env-secret-42" not in output and "leaked-bearer-token-1" not in output
    assert "Traceback" not in output
