"""The registry of diagnostic codes: complete, used by constant, emitted by a case, documented."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest

from nbflow import codes
from nbflow.codes import REGISTRY, RETIRED, closest, lookup
from tests.support.cases import case_dirs, expected

ROOT = Path(__file__).resolve().parent.parent


def test_every_code_is_emitted_by_an_invalid_case() -> None:
    # tests/test_cases.py asserts that each invalid case reports exactly what it expects, so a
    # code some case expects is a code the suite sees emitted, where a user would see it
    expected_codes = {e[2] for case in case_dirs("invalid") for e in expected(case)}
    missing = sorted(set(REGISTRY) - expected_codes)
    assert not missing, f"no tests/cases/invalid case expects {missing}: add one"
    assert expected_codes <= set(REGISTRY), sorted(expected_codes - set(REGISTRY))


def test_diagnostics_reference_in_sync() -> None:
    from nbflow.cli.reference import diagnostics

    committed = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert committed == diagnostics(), (
        "regenerate with: python -m nbflow.cli.reference diagnostics > docs/diagnostics.md"
    )


def test_every_code_is_documented() -> None:
    doc = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (NBF\d{3}) (\S+)$", doc, re.M)
    assert headings == [(c.id, c.name) for c in REGISTRY.values()]
    for c in REGISTRY.values():
        assert c.summary.endswith(".") and len(c.summary) < 100, c.id
        assert len(c.explanation) > len(c.summary), c.id
        assert c.wrong.text and c.right.text and c.wrong.text != c.right.text, c.id
        assert c.help_uri.endswith(f"docs/diagnostics.md#{c.anchor}")


def test_registry_shape() -> None:
    import importlib
    import pkgutil

    defined = {
        (info.name, name): value
        for info in pkgutil.iter_modules(codes.__path__)
        for name, value in vars(importlib.import_module(f"nbflow.codes.{info.name}")).items()
        if isinstance(value, codes.Code)
    }
    unregistered = [key for key, c in defined.items() if REGISTRY.get(c.id) is not c]
    assert not unregistered, f"import these into nbflow/codes/__init__.py: {unregistered}"
    assert len(defined) == len(REGISTRY), "two constants share an id"
    assert list(REGISTRY) == sorted(REGISTRY)
    names = [c.name for c in REGISTRY.values()]
    assert len(set(names)) == len(names)
    for c in REGISTRY.values():
        assert re.fullmatch(r"NBF\d{3}", c.id) and c.id not in RETIRED
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c.name), c.name
        assert c.severities and len(set(c.severities)) == len(c.severities)


def _right_examples(lang: str) -> list[tuple[str, str]]:
    return [(c.id, c.right.text) for c in REGISTRY.values() if c.right.lang == lang]


@pytest.mark.parametrize(("code", "text"), _right_examples("yaml"), ids=lambda x: x[:6])
def test_right_yaml_examples_parse(code: str, text: str) -> None:
    from ruamel.yaml import YAML

    YAML(typ="safe").load(io.StringIO(text))


@pytest.mark.parametrize(("code", "text"), _right_examples("python"), ids=lambda x: x[:6])
def test_right_python_examples_parse(code: str, text: str) -> None:
    ast.parse(text)


def test_no_bare_code_strings_in_the_package() -> None:
    """Call sites name codes by constant: a bare "NBF302" would escape the registry's checks."""
    found = []
    for path in sorted((ROOT / "nbflow").rglob("*.py")):
        if path.parent.name == "codes":  # the registry itself
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"NBF\d{3}", node.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert found == []


def test_lookup_by_id_number_and_name() -> None:
    assert lookup("NBF302") is codes.CYCLE
    assert lookup("nbf302") is codes.CYCLE
    assert lookup("302") is codes.CYCLE
    assert lookup("cycle") is codes.CYCLE
    assert lookup("NBF510") is None  # retired
    assert lookup("NBF999") is None


def test_closest_suggests_a_near_code() -> None:
    assert closest("NBF3O2") is codes.CYCLE
    assert closest("undefined-nam") is codes.UNDEFINED_NAME
    assert closest("xyzzy") is None
