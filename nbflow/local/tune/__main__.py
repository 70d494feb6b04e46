"""`python -m nbflow.local.tune --worker MANIFEST STATE_DIR`: a worker of a parallel search."""

import sys

from nbflow.local.tune.workers import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
