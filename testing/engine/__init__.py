"""The bundled engine under its old name, for tests, benches and outside checks:
`python -m testing.engine {up,preview,refresh,destroy}` and `testing.engine.{engine,props,state}`
are `engine/`'s modules themselves (one engine: make up, tests and benches run the same code)."""

import importlib
import sys

from engine import *  # noqa: F403 - the same names as engine's, listed once (engine.__all__)
from engine import __all__  # noqa: F401

# The same module objects, not copies: a test that patches testing.engine.engine.X patches
# what the engine runs.
for _name in ("cli", "engine", "props", "state"):
    _module = importlib.import_module(f"engine.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module
    globals()[_name] = _module

