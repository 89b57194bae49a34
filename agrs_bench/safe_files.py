"""The one way the tool opens a file it reads or replaces: regular files of bounded size only.

A named pipe with no writer makes a plain `open()` wait forever, `/dev/zero` reads until memory
runs out, and `os.replace()` onto a symbolic link, a pipe or a device node swaps that node for
a regular file (as root, a system device). So every reader opens with O_NONBLOCK, checks with
fstat that it holds a regular file no larger than its limit, and reads at most that much; every
writer resolves a symbolic link to its target, refuses a target that is not a regular file, and
replaces the target atomically (a temporary file beside it, then a rename), leaving the link.

Errors are OSError with errno and strerror set, so that each caller's existing "cannot read
(strerror)" / "cannot write (strerror)" path names the file and the reason in one line.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

MiB = 1 << 20
RESULTS_LIMIT_BYTES = 256 * MiB
"""results.json and cells.jsonl: the largest committed results.json is under 1 MiB."""
CONFIG_LIMIT_BYTES = 1 * MiB
"""config.json and a --config TOML file: a few KiB at most."""

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind_of(mode: int) -> str:
    """'a regular file', 'a named pipe (FIFO)', ... for an st_mode."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


class NotRegularFile(OSError):
    """The path names a directory, pipe, device or socket where a file is expected."""


class FileTooLarge(OSError):
    """The file is larger than the limit its reader states."""


def _refuse_special(mode: int) -> None:
    if not stat.S_ISREG(mode):
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise NotRegularFile(code, f"is {kind_of(mode)}, not a regular file")


def _limit_text(limit_bytes: int) -> str:
    return f"{limit_bytes // MiB} MiB" if limit_bytes >= MiB else f"{limit_bytes} bytes"


def read_bytes(path: str, limit_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit_bytes` of them. Raises
    FileNotFoundError, NotRegularFile (a directory, pipe, device, socket), FileTooLarge, or the
    OSError of the read; never blocks on a pipe and never reads past the limit."""
    _refuse_special(os.stat(path).st_mode)  # before open: opening some devices has effects
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        _refuse_special(info.st_mode)  # the path may have been swapped since the stat
        if info.st_size > limit_bytes:
            raise FileTooLarge(errno.EFBIG, f"is {info.st_size} bytes, more than the "
                                            f"{_limit_text(limit_bytes)} this file may hold")
        chunks, total = [], 0
        while True:  # a file that grows while read stops at the limit
            chunk = os.read(fd, min(limit_bytes + 1 - total, 4 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit_bytes:
                raise FileTooLarge(errno.EFBIG, f"grew past the {_limit_text(limit_bytes)} this "
                                                "file may hold while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_target(path: str) -> str:
    """Where writing `path` lands: `path` itself, or the file its symbolic link(s) point to.
    Raises NotRegularFile when that is a directory, pipe, device or socket, FileNotFoundError
    when a link points nowhere or the folder is missing. Touches nothing."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.islink(path) and not os.path.lexists(target):
        raise FileNotFoundError(errno.ENOENT, f"is a symbolic link to {target!r}, which does not exist")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            raise FileNotFoundError(errno.ENOENT, f"folder {folder!r} does not exist") from None
        return target
    _refuse_special(mode)
    return target


def _umask() -> int:
    try:  # Linux >= 4.7 shows it without changing it (os.umask would, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: str | bytes) -> str:
    """Replace the regular file `path` (or the one its link points to) with `data` in one rename;
    a reader sees the old file or the new one, never half. Returns the file written. OSError
    (its strerror says why) on a special file, a missing folder, a full disk."""
    target = write_target(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a final file gets the user's mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        write_target(target)  # swapped for a pipe or device meanwhile: still never replace it
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return target
