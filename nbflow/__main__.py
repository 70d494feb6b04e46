from nbflow.cli.main import main

raise SystemExit(main())
