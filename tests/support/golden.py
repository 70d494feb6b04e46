"""Golden builds of the examples: tests/golden/<example>/{pipeline,kubernetes}.yaml.

Each example under examples/ is built (in memory, nothing is written beside it) with a fixed
snapshot, so that the files depend on the example, nbflow and kfp alone. After a change to
generation, the runtime or kfp, regenerate them all with ONE command and review the diff:

    python -m tests.support.golden --update
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbflow.generate.snapshot import Snapshot

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "golden"
FILES = ("pipeline.yaml", "kubernetes.yaml")
UPDATE_COMMAND = "python -m tests.support.golden --update"
SNAPSHOT = Snapshot(
    commit="0123456789abcdef0123456789abcdef01234567",
    dirty=False,
    remote="https://github.com/example/nbflow.git",
)


def examples() -> list[Path]:
    return sorted(p.parent for p in EXAMPLES.glob("*/nbflow.yaml"))


def render_example(example: Path) -> dict[str, str]:
    """The golden files of one example, as text."""
    from nbflow.check.validate import load_project
    from nbflow.cli.reporters import render_text
    from nbflow.generate.build import render

    report, project = load_project(example)
    if project is None:
        raise RuntimeError(f"{example.name} does not validate:\n{render_text(report)}")
    files, _ = render(project, snapshot=SNAPSHOT)
    return {name: files[name] for name in FILES}


def update(names: list[str] | None = None) -> list[Path]:
    """Rewrite the golden files (of the named examples, else of all); return those changed."""
    changed: list[Path] = []
    for example in examples():
        if names and example.name not in names:
            continue
        folder = GOLDEN / example.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in render_example(example).items():
            path = folder / name
            old = path.read_bytes() if path.exists() else None
            new = text.encode("utf-8")
            if old != new:
                path.write_bytes(new)
                changed.append(path)
    # goldens of examples that are gone
    kept = {e.name for e in examples()}
    for folder in sorted(GOLDEN.iterdir()) if GOLDEN.is_dir() else []:
        if folder.is_dir() and folder.name not in kept and not names:
            for f in sorted(folder.iterdir()):
                f.unlink()
                changed.append(f)
            folder.rmdir()
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.support.golden",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--update", action="store_true", help="rewrite the golden files")
    p.add_argument("examples", nargs="*", help="only these examples (default: all)")
    args = p.parse_args(argv)
    if not args.update:
        p.print_help()
        return 2
    changed = update(args.examples or None)
    for path in changed:
        print(f"updated {path.relative_to(REPO)}")
    print(f"{len(changed)} golden file{'s' if len(changed) != 1 else ''} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
