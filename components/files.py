"""Every file the project writes (state, outputs, records, checkpoints, downloads) goes through here.

A file is written beside its destination (a new temporary file, created exclusively in the same
folder with its final mode from the first byte), flushed to disk, then renamed over the
destination. So:
- a symlink at the destination is replaced, never followed: nothing the link points at is
  written or has its mode changed (`--outputs ~/x.json` where x.json links to ~/.bashrc);
- a reader, or a crash, never sees half a file;
- a secret-holding file is 0600 whatever the umask, with no moment at a wider mode.

Standard library only (scripts/install_pulumi.py imports it before any virtual environment).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, mode: int = PRIVATE, binary: bool = False,
              make_folder: bool = True) -> Iterator[IO[Any]]:
    """An open file that becomes `path` when the block ends without an exception (and is removed
    otherwise): written beside `path`, then renamed over it, so a symlink at `path` is replaced,
    not followed."""
    dest = Path(path)
    folder = dest.parent
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{dest.name}.", suffix=".tmp")  # O_EXCL, 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)  # rename(2) replaces a symlink itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file(path: str | os.PathLike[str], data: str | bytes, *, mode: int = PRIVATE,
               make_folder: bool = True) -> None:
    """Write `data` to `path` as described in the module: beside it, then renamed over it."""
    with replacing(path, mode=mode, binary=isinstance(data, bytes), make_folder=make_folder) as f:
        f.write(data)
