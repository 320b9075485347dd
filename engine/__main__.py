"""`python -m engine`: the bundled engine's command line (engine/cli.py)."""

from engine.cli import main

raise SystemExit(main())
