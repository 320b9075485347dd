"""The real program in the loop: `python -m testing.engine {up,preview,refresh,destroy}`."""

from testing.engine.engine import (
    CommandResult,
    EngineError,
    Registration,
    ResourceStep,
    StackEngine,
    type_token,
)

__all__ = ["EngineError", "Registration", "CommandResult", "StackEngine", "ResourceStep", "type_token"]
