"""Where the admin token and the Braintrust key come from, so that neither is ever needed on
the command line (where /proc/<pid>/cmdline shows it to every local user):

1. `--...-file PATH`: read it when it exists; when it does not, take 2. or 3. and write it there
   (mode 0600), so `make emulator` and `make up` share one token;
2. the environment variable;
3. a fresh random value.
"""

from __future__ import annotations

import os
from collections.abc import Callable


class CredentialError(Exception):
    """A credential file that cannot be used; the message names it and the fix."""


def write_private(path: str, text: str) -> None:
    """Create `path` with mode 0600 (never wider, whatever the umask), failing if it exists."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def resolve(file: str | None, env_var: str, generate: Callable[[], str],
            environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(value, where it came from). `where` is for the banner and never holds the value."""
    env = os.environ if environ is None else environ
    if file:
        try:
            with open(file) as f:
                value = f.read().strip()
        except FileNotFoundError:
            value = ""
            from_env = env.get(env_var, "").strip()
            value = from_env or generate()
            try:
                write_private(file, value)
            except OSError as e:
                raise CredentialError(f"{file}: cannot write it ({e.strerror}); give a writable "
                                      f"path or create the file yourself") from None
            return value, f"{file} ({'from ' + env_var if from_env else 'generated'}, mode 0600)"
        except OSError as e:
            raise CredentialError(f"{file}: cannot read it ({e.strerror})") from None
        if not value or any(c.isspace() for c in value):
            raise CredentialError(f"{file}: expected one token on one line; write the token "
                                  f"alone, or delete the file to have one generated")
        return value, file
    from_env = env.get(env_var, "").strip()
    if from_env:
        return from_env, f"${env_var}"
    return generate(), "generated"
