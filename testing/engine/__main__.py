"""`python -m testing.engine`: the bundled engine's command line under its old name (engine/cli.py)."""

from engine.cli import main

raise SystemExit(main())
