"""Find the Pulumi CLI, or install the release matching the pinned `pulumi` SDK into the project.

    python3 scripts/install_pulumi.py [--dir DIR] [--requirements FILE]

Prints the folder holding `pulumi` on stdout (one line) and exits 0; otherwise prints one line
on stderr saying what happened and what to do, and exits 1. Standard library only: it runs
before the virtual environment exists.

Where it looks, first found wins: `pulumi` on PATH; $PULUMI_HOME/bin (or ~/.pulumi/bin, where
Pulumi's own installer puts it); DIR (default .venv/bin) when it holds the pinned version. Else
it downloads `pulumi-v<version>-<os>-<arch>.tar.gz` and `pulumi-<version>-checksums.txt` from
$PULUMI_RELEASES_URL (default Pulumi's release location), checks the archive's SHA-256 against
the checksums file, and unpacks the archive's `pulumi/` folder (the CLI and its language
plugins) into DIR. The version is the one `requirements.txt` pins for the `pulumi` SDK, so the
CLI and the SDK the program runs with always agree.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.files import replacing, write_file  # noqa: E402 - standard library only, after the path

RELEASES_URL = "https://get.pulumi.com/releases/sdk"
MANUAL = "https://www.pulumi.com/docs/install/"
STAMP = "pulumi.version"  # beside the installed CLI: which release DIR holds
TIMEOUT = 60.0
PROGRESS_FROM = 5 << 20  # bytes: a smaller download needs no progress lines
# The largest download of each kind, and the most the archive may unpack to: far above a real
# release (a checksums file of a few kB, an archive of ~100 MB unpacking to ~400 MB), far below
# what fills a disk. A server sending for ever, or a gzip bomb inside the tar, stops here.
MAX_CHECKSUMS = 1 << 20
MAX_ARCHIVE = 1 << 30
MAX_UNPACKED = 4 << 30
OS_NAMES = {"Linux": "linux", "Darwin": "darwin"}
ARCH_NAMES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class InstallError(Exception):
    """One line for the user: what happened and what to do."""


def pinned_version(requirements: Path) -> str:
    try:
        text = requirements.read_text()
    except OSError as exc:
        raise InstallError(f"cannot read {requirements}: {exc.strerror}: the Pulumi CLI version comes from "
                           "its `pulumi==X.Y.Z` line") from None
    match = re.search(r"^pulumi==(\d+\.\d+\.\d+)\s*$", text, re.MULTILINE)
    if match is None:
        raise InstallError(f"{requirements} pins no `pulumi==X.Y.Z`: pin the SDK there, or install the Pulumi "
                           f"CLI by hand ({MANUAL})")
    return match.group(1)


def platform_names(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """Pulumi's names for this OS and architecture: linux|darwin, x64|arm64."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Windows":
        raise InstallError("on Windows install the Pulumi CLI by hand (`winget install pulumi` or "
                           f"{MANUAL}), open a new shell so that `pulumi` is on PATH, and run make again")
    os_name, arch = OS_NAMES.get(system), ARCH_NAMES.get(machine)
    if os_name is None or arch is None:
        raise InstallError(f"Pulumi publishes no CLI for {system}/{machine}: install it by hand ({MANUAL}) "
                           "and put it on PATH, or set PULUMI_HOME to the folder holding bin/pulumi")
    return os_name, arch


def existing(dir_: Path, version: str) -> Path | None:
    """A folder already holding a usable `pulumi`, PATH first."""
    on_path = shutil.which("pulumi")
    if on_path:
        return Path(on_path).parent
    home = Path(os.environ["PULUMI_HOME"]) if os.environ.get("PULUMI_HOME") else Path.home() / ".pulumi"
    if os.access(home / "bin" / "pulumi", os.X_OK):
        return home / "bin"
    stamp = dir_ / STAMP
    if os.access(dir_ / "pulumi", os.X_OK) and stamp.is_file() and stamp.read_text().strip() == version:
        return dir_
    return None


def _too_large(url: str, what: str, cap: int) -> InstallError:
    return InstallError(f"{url} sent a {what} larger than {cap >> 20} MiB, far more than a Pulumi release's: "
                        f"check PULUMI_RELEASES_URL, or install the Pulumi CLI by hand ({MANUAL}) and put it on PATH")


def _copy(resp: Any, out: BinaryIO, name: str, cap: int = MAX_ARCHIVE, url: str = "", what: str = "file") -> None:
    """The body into `out`, refused past `cap` bytes; a large one says how far it got at each quarter."""
    length = resp.headers.get("Content-Length") or ""
    total = int(length) if length.isdigit() else 0
    if total > cap:
        raise _too_large(url, what, cap)
    done, shown = 0, 0
    while block := resp.read(1 << 20):
        done += len(block)
        if done > cap:
            raise _too_large(url, what, cap)
        out.write(block)
        if total >= PROGRESS_FROM and done * 4 // total > shown:
            shown = done * 4 // total
            print(f"  {name}: {done >> 20} of {total >> 20} MB", file=sys.stderr, flush=True)


def _fetch(url: str, dest: Path, what: str) -> None:
    """`url` into `dest` within DOWNLOAD_DEADLINE() seconds for the whole download. urllib's
    timeout bounds each read, not the download: a server sending a byte at a time would hold
    `make up` for ever. So the download runs on a daemon thread that is abandoned at the
    deadline (this script then exits, and the thread with it)."""
    seconds = download_deadline()
    box: list[BaseException | None] = []

    def run() -> None:
        try:
            _fetch_now(url, dest, what)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            box.append(exc)
        else:
            box.append(None)

    thread = threading.Thread(target=run, name="download", daemon=True)
    thread.start()
    thread.join(seconds)
    if not box:
        raise InstallError(f"downloading {url} took longer than {seconds:g} s (the whole download): check the "
                           f"network or PULUMI_RELEASES_URL, or install the Pulumi CLI by hand ({MANUAL}) and put "
                           "it on PATH")
    if box[0] is not None:
        raise box[0]


def download_deadline() -> float:
    """Seconds for one whole download: $PULUMI_DOWNLOAD_DEADLINE, else 900 (a release is
    ~100 MB)."""
    try:
        value = float(os.environ.get("PULUMI_DOWNLOAD_DEADLINE") or 900)
    except ValueError:
        return 900.0
    return value if 0 < value < 86400 else 900.0


def _fetch_now(url: str, dest: Path, what: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp, dest.open("wb") as out:  # noqa: S310 - http(s) only
            _copy(resp, out, dest.name, MAX_CHECKSUMS if what == "checksums file" else MAX_ARCHIVE, url, what)
    except urllib.error.HTTPError as exc:
        raise InstallError(f"{url} answered HTTP {exc.code}: no {what} there; check PULUMI_RELEASES_URL, or "
                           f"install the Pulumi CLI by hand ({MANUAL}) and put it on PATH") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InstallError(f"cannot download the Pulumi CLI from {url} ({reason}): check the network or "
                           f"PULUMI_RELEASES_URL, or install it by hand ({MANUAL}) and put it on PATH, or set "
                           "PULUMI_HOME to the folder holding bin/pulumi") from None


def expected_sha256(checksums: Path, archive: str) -> str:
    """The archive's line in a sha256sum-format file ("<hex>  <name>", "*" marks binary mode)."""
    for line in checksums.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == archive and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            return parts[0].lower()
    raise InstallError(f"the checksums file lists no {archive}: the release is incomplete; install the Pulumi "
                       f"CLI by hand ({MANUAL}) and put it on PATH")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(archive: Path, dir_: Path) -> None:
    """The archive's `pulumi/` files, flat into DIR; nothing outside it, no links, no devices."""
    dir_.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        members, unpacked = [], 0
        for member in tar:  # one header at a time: a member past the cap is never decompressed
            unpacked += max(member.size, 0)
            if unpacked > MAX_UNPACKED:
                raise InstallError(f"{archive.name} unpacks to more than {MAX_UNPACKED >> 30} GiB, far more than a "
                                   f"Pulumi release: nothing installed; install the Pulumi CLI by hand ({MANUAL})")
            members.append(member)
        files = [m for m in members if m.isfile() and re.fullmatch(r"pulumi/[A-Za-z0-9][A-Za-z0-9._-]*", m.name)]
        if not any(m.name == "pulumi/pulumi" for m in files):
            raise InstallError(f"{archive.name} holds no pulumi/pulumi: not a Pulumi CLI release; install it by "
                               f"hand ({MANUAL})")
        for member in files:
            src = tar.extractfile(member)
            assert src is not None
            target = dir_ / member.name[len("pulumi/"):]
            # Beside the target, then renamed over it: a running pulumi is never half-overwritten,
            # and a symlink in DIR is replaced, not followed (components/files.py).
            with src, replacing(target, mode=0o755, binary=True) as out:
                shutil.copyfileobj(src, out)


def install(dir_: Path, version: str, base_url: str) -> None:
    os_name, arch = platform_names()
    archive = f"pulumi-v{version}-{os_name}-{arch}.tar.gz"
    checksums = f"pulumi-{version}-checksums.txt"
    base = base_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise InstallError(f"PULUMI_RELEASES_URL={base_url!r} is not an http(s) URL: unset it to use {RELEASES_URL}")
    with tempfile.TemporaryDirectory(prefix="pulumi-install-") as tmp:
        sums, tarball = Path(tmp) / checksums, Path(tmp) / archive
        _fetch(f"{base}/{checksums}", sums, "checksums file")
        want = expected_sha256(sums, archive)
        # said once the release answers, so a failure before it stays one line
        print(f"the Pulumi CLI is not on PATH: installing v{version} (the pinned pulumi SDK's version) for "
              f"{os_name}-{arch} from {base} into {dir_}", file=sys.stderr, flush=True)
        _fetch(f"{base}/{archive}", tarball, "release archive")
        got = sha256(tarball)
        if got != want:
            raise InstallError(f"checksum mismatch for {archive} (sha256 {got}, the release says {want}): nothing "
                               "installed; download again later, or install the Pulumi CLI by hand "
                               f"({MANUAL}) and put it on PATH")
        unpack(tarball, dir_)
    write_file(dir_ / STAMP, version + "\n", mode=0o644)
    print(f"installed the Pulumi CLI v{version} in {dir_}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("PULUMI_INSTALL_DIR") or ROOT / ".venv/bin"),
                        help="where to install the CLI (default .venv/bin, or $PULUMI_INSTALL_DIR)")
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--why", type=Path, metavar="FILE",
                        help="on failure write the one line to FILE instead of stderr (make up then "
                             "says which engine it runs instead, and why)")
    args = parser.parse_args(argv)
    try:
        version = pinned_version(args.requirements)
        found = existing(args.dir, version)
        if found is None:
            install(args.dir, version, os.environ.get("PULUMI_RELEASES_URL") or RELEASES_URL)
            found = args.dir
    except InstallError as exc:
        if args.why is not None:
            write_file(args.why, f"{exc}\n", mode=0o644)  # never through a symlink at FILE
        else:
            print(f"pulumi: {exc}", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
