from cioguard.cli import main

raise SystemExit(main())
