from nbflow.cli import main

raise SystemExit(main())
