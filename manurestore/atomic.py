"""Writing files in one step: a temporary file beside the target, then a rename.

An interrupted write never leaves half a file under the real name, and the result gets the
permissions any file the user makes would get (0666 less the umask). The temporary file's name
is defined here once, `.NAME.HOST-PID-RANDOM.tmp`, so a later run can tell a temp file left by
a killed process (see `remove_stale_temps`) from anything else in the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import Callable

#: A temp file untouched this long is stale whoever made it: a writer fills its temp file and
#: publishes it within moments, so an hour-old one belongs to a process that died.
STALE_AFTER_S = 3600
# The target's name is cut to this many bytes, so the temp name stays under the 255-byte limit.
_MAX_NAME_BYTES = 200
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]*)-[0-9a-f]{8}\.tmp", re.DOTALL)


def _host_tag() -> str:
    """Eight hex digits for this machine and process-id namespace, so a pid is only compared with
    pids of the same namespace: containers sharing a hostname, or a network folder written from
    several machines, each have their own."""
    namespace = ""
    with contextlib.suppress(OSError):  # no /proc (not Linux): the hostname alone
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    identity = f"{socket.gethostname()}/{namespace}".encode("utf-8", "surrogateescape")
    return hashlib.blake2b(identity, digest_size=4).hexdigest()


def temp_name(name: str) -> str:
    """A fresh hidden temp-file name for a file to be published as `name`."""
    stem = name
    while len(os.fsencode(stem)) > _MAX_NAME_BYTES:  # Devanagari is 3 bytes a letter
        stem = stem[:-1]
    return f".{stem}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def open_temp(path: Path) -> tuple[int, Path]:
    """Create a new temp file beside `path` (never an existing one): its descriptor and path.

    OSError (no such folder, permission denied, read-only file system) is the caller's to report.
    """
    folder = Path(path).parent
    for _ in range(100):
        temp = folder / temp_name(Path(path).name)
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: cannot create a temporary file")


def publish(temp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temp file to `path` in one step; FileExistsError when `path` exists and
    `overwrite` is off, even if another process made it a moment ago."""
    if overwrite:
        os.replace(temp, path)
        return
    # A hard link fails if `path` appeared meanwhile (another process), unlike rename.
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:
        # File systems without hard links (FAT, some network shares): check, then rename.
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(temp, path)
        return
    with contextlib.suppress(OSError):  # published already; a leftover temp is cleared as stale later
        os.unlink(temp)


def atomic_write(path: Path, write: Callable[[Path], None], *, overwrite: bool = True) -> None:
    """Call write(temp) on a temporary file beside `path`, then publish it as `path`.

    Stale temp files of earlier, killed runs in that folder are removed first. With
    overwrite=False an existing `path` is left alone and FileExistsError is raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    handle, temp = open_temp(path)
    os.close(handle)
    try:
        write(temp)
        os.chmod(temp, _user_file_mode())  # a writer that recreates the file (safetensors) gets 0600
        publish(temp, path, overwrite)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True) -> None:
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"), overwrite=overwrite)


def _user_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _process_gone(pid: int) -> bool:
    if os.name != "posix":
        return False  # no cheap, safe test: such files go by age alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, someone else's
        return False
    return False


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether `path` is a temp file of ours that nobody will finish: its name matches `temp_name`
    exactly, it is a plain file, and it was made on this machine by a process that no longer runs,
    or nobody has written to it for STALE_AFTER_S seconds."""
    match = _TEMP_NAME.fullmatch(path.name)
    if match is None:
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    if (now if now is not None else time.time()) - info.st_mtime > STALE_AFTER_S:
        return True
    return match["host"] == _host_tag() and _process_gone(int(match["pid"]))


def remove_stale_temps(folder: Path) -> int:
    """Remove the stale temp files (see `is_stale_temp`) directly in `folder`; how many went.

    Nothing else is ever touched: a name that does not match exactly is someone else's file.
    """
    removed = 0
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            candidates = [Path(entry.path) for entry in entries if entry.name.endswith(".tmp")]
    except OSError:
        return 0
    for path in candidates:
        if is_stale_temp(path, now):
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove: leave it
                path.unlink()
                removed += 1
    return removed
