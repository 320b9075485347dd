"""The real program in the loop: `python -m testing.engine {up,preview,refresh,destroy}`."""

from testing.engine.engine import (
    EngineError,
    Registration,
    Result,
    StackEngine,
    Step,
    type_token,
)

__all__ = ["EngineError", "Registration", "Result", "StackEngine", "Step", "type_token"]
