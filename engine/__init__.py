"""The bundled engine: runs the project's program (`__main__.py`, unchanged) on Pulumi's own
Python runtime against a resource monitor of ours, which plays Pulumi's engine steps on the real
`python -m pulumi.dynamic` provider process. For the local emulator only (`python -m engine`
refuses any other workspace); tests and benches use the same code (`testing.engine` is this
package under its old name). See README.md ("Without the Pulumi CLI") and testing/README.md.
"""

from engine.engine import (
    CommandResult,
    EngineError,
    Registration,
    ResourceStep,
    StackEngine,
    type_token,
)

__all__ = ["EngineError", "Registration", "CommandResult", "StackEngine", "ResourceStep", "type_token"]
