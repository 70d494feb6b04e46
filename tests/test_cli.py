"""The CLI end to end, in-process and as a subprocess, with its documented exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nbflow import __version__
from nbflow.cli.main import COMMANDS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from tests.support.cases import CASES
from tests.support.cli import run_cli, run_subprocess

VALID = CASES / "valid" / "minimal"
INVALID = CASES / "invalid" / "unknown-tuning-key"


def test_version(capsys):
    r = run_cli(capsys, "--version")
    assert r.code == EXIT_OK and __version__ in r.out


def test_validate_ok(capsys):
    r = run_cli(capsys, "validate", str(VALID))
    assert r.code == EXIT_OK, r.out
    assert "ok: checked 1 manifest, 0 errors, 0 warnings" in r.out
    assert "nbflow explain" not in r.out  # nothing to explain


def test_validate_error_text_has_code_frame(capsys):
    r = run_cli(capsys, "validate", str(INVALID / "nbflow.yaml"))
    assert r.code == EXIT_INPUT
    assert "error[NBF101]: unknown key `paralelTrials` in `tuning`" in r.out
    assert "  paralelTrials: 3" in r.out and "^^^^^^^^^^^^^" in r.out
    assert "did you mean `parallelTrials`?" in r.out
    assert "more on a code: `nbflow explain NBF101`" in r.out


def test_validate_monorepo_finds_every_manifest(capsys, tmp_path):
    # a repository of two projects whose manifests point at a shared notebooks folder
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copytree(CASES / "notebooks", tmp_path / "notebooks")
    proj_a = tmp_path / "proj" / "a"
    proj_b = tmp_path / "proj" / "nested" / "b"
    for p, src, up in ((proj_a, VALID, "../../"), (proj_b, INVALID, "../../../")):
        p.mkdir(parents=True)
        text = (src / "nbflow.yaml").read_text().replace("../../notebooks/", up + "notebooks/")
        (p / "nbflow.yaml").write_text(text)
    r = run_cli(capsys, "validate", str(tmp_path / "proj"))
    assert r.code == EXIT_INPUT
    assert "checked 2 manifests, 1 error, 0 warnings (in 1 file)" in r.out


@pytest.mark.parametrize("fmt", ["json", "github", "sarif"])
def test_validate_formats(capsys, fmt):
    r = run_cli(capsys, "validate", "--format", fmt, str(INVALID))
    assert r.code == EXIT_INPUT
    if fmt == "json":
        doc = json.loads(r.out)
        assert doc["ok"] is False and doc["errors"] == 1
        d = doc["diagnostics"][0]
        assert (
            d["code"] == "NBF101" and d["location"]["line"] == 26 and d["location"]["column"] == 3
        )
        assert d["hint"] == "did you mean `parallelTrials`?"
    elif fmt == "github":
        first = r.out.splitlines()[0]
        assert first.startswith("::error file=")
        assert ",line=26,col=3," in first and "title=NBF101 unknown-key::" in first
    else:
        doc = json.loads(r.out)
        assert doc["version"] == "2.1.0"
        res = doc["runs"][0]["results"][0]
        assert res["ruleId"] == "NBF101"
        assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 26
        assert doc["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "NBF101"


def test_github_escapes_newlines_and_commas(capsys, tmp_path):
    from nbflow import codes
    from nbflow.cli.reporters import render_github
    from nbflow.diagnostics import Location, Report, error

    report = Report(manifests=["a,b.yaml"])
    report.extend([error(codes.UNKNOWN_KEY, "50% bad\nsecond line", Location("a,b.yaml", 1, 2))])
    line = render_github(report).splitlines()[0]
    assert (
        line
        == "::error file=a%2Cb.yaml,line=1,col=2,title=NBF101 unknown-key::50%25 bad%0Asecond line"
    )


def test_strict_fails_on_warnings(capsys):
    case = CASES / "invalid" / "forgotten-cell"  # only a warning
    assert run_cli(capsys, "validate", str(case)).code == EXIT_OK
    assert run_cli(capsys, "validate", "--strict", str(case)).code == EXIT_INPUT


def test_usage_errors_exit_2(capsys, tmp_path):
    assert run_cli(capsys, "validate", str(tmp_path / "nope")).code == EXIT_USAGE
    r = run_cli(capsys, "validate", str(tmp_path))  # a folder with no manifest
    assert r.code == EXIT_USAGE and "no nbflow.yaml found" in r.err
    assert run_cli(capsys, "validate", "--format", "xml", str(VALID)).code == EXIT_USAGE
    assert run_cli(capsys).code == EXIT_USAGE
    assert run_cli(capsys, "frobnicate").code == EXIT_USAGE


def test_cells_lists_owner(capsys):
    r = run_cli(
        capsys,
        "cells",
        str(CASES / "notebooks" / "base.ipynb"),
        "--manifest",
        str(VALID / "nbflow.yaml"),
    )
    assert r.code == EXIT_OK
    lines = r.out.splitlines()
    assert lines[0].split()[:4] == ["#", "id", "type", "owner"]
    row7 = next(line for line in lines if line.split()[0] == "7")
    assert "cell-7" in row7 and "step:train" in row7 and "model = SVC(" in row7
    row3 = next(line for line in lines if line.split()[0] == "3")
    assert "parameters" in row3


def test_cells_json_and_missing_notebook(capsys, tmp_path):
    r = run_cli(capsys, "cells", "--format", "json", str(CASES / "notebooks" / "base.ipynb"))
    rows = json.loads(r.out)
    assert [row["number"] for row in rows] == list(range(1, 10))
    assert rows[0]["type"] == "markdown" and rows[1]["first_line"] == "import numpy as np"
    r = run_cli(capsys, "cells", str(tmp_path / "missing.ipynb"))
    assert r.code == EXIT_USAGE and "notebook not found" in r.err


def test_schema_command(capsys):
    r = run_cli(capsys, "schema")
    schema = json.loads(r.out)
    assert schema["title"] == "nbflow manifest"
    assert "steps" in schema["properties"]


def test_subprocess_exit_codes_and_no_traceback(tmp_path):
    ok = run_subprocess("validate", str(VALID))
    assert ok.code == EXIT_OK, ok.err
    bad = run_subprocess("validate", str(INVALID))
    assert bad.code == EXIT_INPUT and "NBF101" in bad.out
    (tmp_path / "nbflow.yaml").write_text("apiVersion: nbflow/v1\nname: [unclosed\n")
    broken = run_subprocess("validate", str(tmp_path))
    assert broken.code == EXIT_INPUT and "NBF002" in broken.out
    usage = run_subprocess("validate", "--nope")
    assert usage.code == EXIT_USAGE
    for r in (ok, bad, broken, usage):
        assert "Traceback" not in r.out + r.err


def test_a_bug_is_one_line_and_exit_3_never_a_traceback(capsys, monkeypatch):
    def broken(args):
        {}["missing"]  # any exception nbflow did not mean to raise

    monkeypatch.setitem(COMMANDS, "validate", broken)
    r = run_cli(capsys, "validate", str(VALID))
    assert r.code == EXIT_INTERNAL == 3
    assert r.err.splitlines() == [
        "nbflow: internal error (please report): KeyError: 'missing' "
        f"(at test_cli.py:{broken.__code__.co_firstlineno + 1})"
    ]
    assert "Traceback" not in r.out + r.err
    monkeypatch.setenv("NBFLOW_TRACEBACK", "1")
    assert "Traceback" in run_cli(capsys, "validate", str(VALID)).err


def test_subprocess_internal_error_exit_3(tmp_path):
    """A real bug, as a user meets it: a RecursionError deep in a library is one line, exit 3."""
    code = (
        "import sys; import nbflow.cli.main as m; "
        "m.COMMANDS['schema'] = lambda a: (_ for _ in ()).throw(RecursionError('deep')); "
        "sys.exit(m.main(['schema']))"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.startswith("nbflow: internal error (please report): RecursionError: deep")
    assert "Traceback" not in proc.stderr


def test_validate_imports_none_of_the_heavy_packages():
    code = (
        "import sys; from nbflow.cli.main import main; "
        f"rc = main(['validate', {str(VALID)!r}]); "
        "heavy = [m for m in ('kfp', 'kubernetes', 'optuna', 'IPython', 'nbformat', 'jsonschema') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_schema_file_in_sync():
    from nbflow.check.manifest import schema_text

    committed = (
        Path(__file__).resolve().parent.parent / "schemas" / "nbflow.v1.schema.json"
    ).read_text()
    assert committed == schema_text(), (
        "regenerate with: nbflow schema > schemas/nbflow.v1.schema.json"
    )


def test_schema_accepts_valid_cases_and_rejects_unknown_keys():
    import jsonschema

    from nbflow.check.manifest import json_schema
    from nbflow.load.yaml_positions import load_file
    from tests.support.cases import case_dirs

    validator = jsonschema.Draft202012Validator(json_schema())
    for case in case_dirs("valid"):
        data = load_file(case / "nbflow.yaml").data
        assert list(validator.iter_errors(data)) == [], case.name
    bad = load_file(CASES / "invalid" / "unknown-step-key" / "nbflow.yaml").data
    assert any("retires" in e.message for e in validator.iter_errors(bad))


def test_manifest_reference_in_sync():
    from nbflow.cli.reference import render

    committed = (Path(__file__).resolve().parent.parent / "docs" / "manifest.md").read_text()
    assert committed == render(), (
        "regenerate with: python -m nbflow.cli.reference > docs/manifest.md"
    )


def test_command_reference_in_sync():
    from nbflow.cli.reference import commands

    committed = (Path(__file__).resolve().parent.parent / "docs" / "commands.md").read_text()
    assert committed == commands(), (
        "regenerate with: python -m nbflow.cli.reference commands > docs/commands.md"
    )


# -- what the user wrote, escaped for the medium it reaches (issue 12, item 8) ------------------

HOSTILE_KEY = "bad\n::error file=x::pwned \x1b[31mred\r[l](https://e.x) <details>"


def hostile_manifest(folder: Path) -> Path:
    """The minimal valid project, plus an unknown key holding a line break, a workflow command,
    an escape sequence, a carriage return, a Markdown link and an HTML tag."""
    folder.mkdir(parents=True)
    # the notebook beside it: outside git, a manifest names only files of its own folder
    shutil.copy(CASES / "notebooks" / "base.ipynb", folder / "base.ipynb")
    text = (VALID / "nbflow.yaml").read_text(encoding="utf-8")
    text = text.replace("../../notebooks/", "")
    (folder / "nbflow.yaml").write_text(text + f"{json.dumps(HOSTILE_KEY)}: 1\n", encoding="utf-8")
    return folder


def test_text_output_keeps_a_name_on_its_line_and_out_of_the_terminal(capsys, tmp_path):
    r = run_cli(capsys, "validate", str(hostile_manifest(tmp_path / "p")))
    assert r.code == EXIT_INPUT
    assert not [line for line in r.out.splitlines() if line.startswith("::")]  # no command
    assert "\x1b" not in r.out and "\r" not in r.out
    assert "unknown key `bad\\n::error file=x::pwned \\x1b[31mred\\r[l](https" in r.out


def test_github_output_escapes_a_name_and_its_control_characters(capsys, tmp_path):
    r = run_cli(capsys, "validate", "--format", "github", str(hostile_manifest(tmp_path / "p")))
    (line, summary) = r.out.splitlines()
    assert line.startswith("::error file=") and summary.startswith("failed:")
    assert "\x1b" not in r.out and "\r" not in r.out
    assert "unknown key `bad%0A::error file=x%3A%3Apwned" not in line  # data is not a property
    assert "unknown key `bad%0A::error file=x::pwned \\x1b[31mred\\r" in line


def test_a_raw_escape_in_a_manifest_line_is_shown_escaped_with_the_caret_under_it(tmp_path):
    from nbflow import codes
    from nbflow.cli.reporters import render_text
    from nbflow.diagnostics import Location, Report, error

    report = Report(manifests=["m.yaml"], sources={"m.yaml": "a: \x1b[2Jb\n"})
    report.extend([error(codes.UNKNOWN_KEY, "bad", Location("m.yaml", 1, 8, end_column=9))])
    lines = render_text(report).splitlines()
    assert lines[3] == " 1 | a: \\x1b[2Jb"
    assert lines[4] == "   | " + " " * len("a: \\x1b[2J") + "^"  # under the `b`


def test_sarif_uri_is_percent_encoded(capsys, tmp_path):
    folder = hostile_manifest(tmp_path / "a b#1%x?")
    r = run_cli(capsys, "validate", "--format", "sarif", str(folder))
    (result,) = json.loads(r.out)["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("/a%20b%231%25x%3F/nbflow.yaml"), uri


def test_cells_shows_escape_sequences_of_a_first_line_escaped(capsys, tmp_path):
    from tests.support.projects import write_project

    root = write_project(
        tmp_path / "p",
        ["import os", "print('\x1b[2J\x1b[31mred')\r\nx = 1", "\x9b31mc1"],
        "name: esc\nsetup: 1\nsteps:\n  one: {cells: 2-3}\n",
    )
    r = run_cli(capsys, "cells", str(root / "nb.ipynb"))
    assert r.code == EXIT_OK
    assert "\x1b" not in r.out and "\r" not in r.out and "\x9b" not in r.out
    assert "print('\\x1b[2J\\x1b[31mred')" in r.out and "\\x9b31mc1" in r.out


def test_run_progress_shows_a_failed_steps_output_without_its_control_characters():
    import io

    from nbflow.cli.progress import StepProgress
    from nbflow.local.run import StepResult

    stream = io.StringIO()
    shown = StepProgress("p", ["one"], stream)
    error = "step 'one' failed in cell 2\n\x1b]0;title\x07\x1b[2Jprinted\r::error::forged"
    shown.update(StepResult("one", status="failed", seconds=1.0, error=error))
    out = stream.getvalue()
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "      \\x1b]0;title\\x07\\x1b[2Jprinted\\r::error::forged" in out.splitlines()
    assert not [line for line in out.splitlines() if line.lstrip().startswith("::")]
    error = "boom\n::error file=x::forged\n  ::warning::too"
    shown.update(StepResult("one", status="failed", seconds=1.0, error=error))
    lines = stream.getvalue().splitlines()
    assert lines[-2:] == ["      \\x3a:error file=x::forged", "        \\x3a:warning::too"]


def test_explain_prints_the_explanation(capsys):
    r = run_cli(capsys, "explain", "NBF302")
    assert r.code == EXIT_OK, r.err
    lines = r.out.splitlines()
    assert lines[0] == "NBF302 cycle (error)"
    assert lines[1] == "Steps wait for each other in a cycle."
    assert "Wrong:" in lines and "Right:" in lines
    assert "      train: {cells: 7, after: [evaluate]}" in lines  # the wrong example, indented
    assert lines[-1].endswith("docs/diagnostics.md#nbf302-cycle")
    assert run_cli(capsys, "explain", "cycle").out == r.out
    assert run_cli(capsys, "explain", "nbf302").out == r.out


def test_explain_without_a_code_lists_every_code(capsys):
    from nbflow.codes import REGISTRY

    r = run_cli(capsys, "explain")
    assert r.code == EXIT_OK
    listed = [line.split()[0] for line in r.out.splitlines() if line.startswith("NBF")]
    assert listed == list(REGISTRY)
    row = next(line for line in r.out.splitlines() if line.startswith("NBF704"))
    assert row.split()[1:3] == ["star-import", "warning"]


def test_explain_unknown_code_exits_2_with_a_suggestion(capsys):
    r = run_cli(capsys, "explain", "NBF3O2")
    assert r.code == EXIT_USAGE and r.out == ""
    assert "no diagnostic code `NBF3O2`: did you mean NBF302 (cycle)?" in r.err
    r = run_cli(capsys, "explain", "NBF510")  # retired: never reported
    assert r.code == EXIT_USAGE
    r = run_cli(capsys, "explain", "xyzzy")
    assert r.code == EXIT_USAGE and "`nbflow explain` lists them" in r.err


def test_explain_as_a_subprocess():
    ok = run_subprocess("explain", "NBF701")
    assert ok.code == EXIT_OK and ok.out.startswith("NBF701 undefined-name (error)\n"), ok.err
    bad = run_subprocess("explain", "NBF7O1")
    assert bad.code == EXIT_USAGE and "did you mean NBF701 (undefined-name)?" in bad.err
    for r in (ok, bad):
        assert "Traceback" not in r.out + r.err


def test_sarif_rules_carry_descriptions_and_help(capsys):
    from nbflow.codes import UNKNOWN_KEY

    r = run_cli(capsys, "validate", "--format", "sarif", str(INVALID))
    rule = json.loads(r.out)["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "NBF101" and rule["name"] == "unknown-key"
    assert rule["shortDescription"] == {"text": UNKNOWN_KEY.summary}
    assert rule["fullDescription"] == {"text": UNKNOWN_KEY.explanation}
    assert UNKNOWN_KEY.explanation in rule["help"]["text"]
    assert "paralelTrials" in rule["help"]["markdown"]  # the wrong example
    assert rule["helpUri"] == (
        "https://github.com/nbflow/nbflow/blob/main/docs/diagnostics.md#nbf101-unknown-key"
    )
    assert rule["defaultConfiguration"] == {"level": "error"}
