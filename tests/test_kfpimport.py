"""kfp imported for compiling only (nbflow/generate/kfp_import.py): each case in a fresh interpreter, where
the light import actually happens (in the pytest process kfp is long imported)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"


def fresh(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_build_leaves_out_the_rest_client_and_the_kubernetes_client(tmp_path: Path) -> None:
    out = fresh(
        f"""
        import sys
        from nbflow.cli.main import main
        assert main(["build", {str(DIGITS)!r}, "--out", {str(tmp_path / "light")!r}]) == 0
        print("LOADED", sorted(m for m in ("kubernetes", "kubernetes.client", "kfp.client", "kfp_server_api") if m in sys.modules))
        """
    )
    assert "LOADED []" in out


def test_kfp_looks_the_same_afterwards() -> None:
    out = fresh(
        """
        import sys
        from nbflow.generate.kfp_import import import_for_compile
        import_for_compile(kubernetes=True)
        import kfp
        from kfp.client import Client
        assert kfp.Client is Client, "kfp.Client is the REST client, imported on first use"
        assert kfp.dsl is sys.modules["kfp.dsl"] and kfp.components is sys.modules["kfp.components"]
        try:
            kfp.no_such_thing
        except AttributeError as exc:
            print("MISSING", exc)
        """
    )
    assert "MISSING module 'kfp' has no attribute 'no_such_thing'" in out


def test_the_kubernetes_client_arrives_when_kfp_kubernetes_uses_it() -> None:
    out = fresh(
        """
        import sys
        from nbflow.generate.kfp_import import import_for_compile
        import_for_compile(kubernetes=True)
        assert "kubernetes" not in sys.modules, "no stand-in is left behind"
        from kfp.kubernetes import node_affinity
        affinity = node_affinity.client.V1NodeAffinity()  # what add_node_affinity_json calls
        import kubernetes.client
        assert type(affinity) is kubernetes.client.V1NodeAffinity
        assert not type(sys.modules["kubernetes"]).__name__.startswith("_StandIn")
        print("OK")
        """
    )
    assert "OK" in out


@pytest.mark.slow
@pytest.mark.parametrize("example", ["digits", "digits-torch"])  # pod labels; GPUs, tolerations
def test_light_and_ordinary_imports_build_the_same_bytes(example: str, tmp_path: Path) -> None:
    build = 'from nbflow.cli.main import main; assert main(["build", {!r}, "--out", {!r}]) == 0'
    project = str(REPO / "examples" / example)
    fresh(build.format(project, str(tmp_path / "light")))
    fresh(
        "import kfp, kfp.kubernetes, kubernetes\n"
        + build.format(project, str(tmp_path / "ordinary"))
    )
    light = sorted(p.relative_to(tmp_path / "light") for p in (tmp_path / "light").rglob("*"))
    ordinary = sorted(
        p.relative_to(tmp_path / "ordinary") for p in (tmp_path / "ordinary").rglob("*")
    )
    assert light == ordinary and light
    for name in light:
        if (tmp_path / "light" / name).is_file():
            assert (tmp_path / "light" / name).read_bytes() == (
                tmp_path / "ordinary" / name
            ).read_bytes(), name


def test_kfp_still_names_the_caller_without_reading_source() -> None:
    import inspect

    from kfp import dsl
    from kfp.dsl import pipeline_task

    from nbflow.generate.kfp_import import stack_without_source

    with stack_without_source():
        assert pipeline_task.inspect is not inspect
        with pytest.raises(ValueError, match=r"^set_cpu_request can only be used on single-step"):

            @dsl.pipeline
            def outer():  # type: ignore[no-untyped-def]  (kfp reads the string "None" as a type)
                dsl.importer(artifact_uri="gs://b/x", artifact_class=dsl.Dataset).set_cpu_request(
                    "1"
                )

    assert pipeline_task.inspect is inspect
