#!/usr/bin/env bash
# Build the prebuilt JupyterLab extension into nbflow/lab/labextension (committed, so that
# `pip install "nbflow[lab]"` needs no Node.js). Needs Node.js 20+, npm and a Python with
# jupyterlab installed (its staging/package.json says which shared packages the lab provides).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python}"
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc
core="$("$PYTHON" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')"
rm -rf ../nbflow/lab/labextension
node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path "$core" .
# what tests/test_lab_package.py checks: the committed build is the build of these sources
(cd .. && "$PYTHON" -m tests.support.lab --record)
