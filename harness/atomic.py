"""State that survives a kill: files and whole directories replaced atomically, one writer per directory.

A command killed at any point (a CI timeout, an out-of-memory kill, Ctrl-C) leaves either the old state or
the new one, never a mix: every file is written to a temporary sibling and renamed into place
(:func:`write_bytes`), and a directory of files that belong together (a golden set) is built as a staging
sibling and swapped in whole (:func:`replacing`). :func:`locked` lets one writer at a time work on a
directory; a second one is refused with the holder's pid (the lock is the kernel's ``flock``, so a killed
holder releases it).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from harness.errors import GoldenError


def _file_mode(path: Path) -> int:
    """The permissions a rewritten ``path`` keeps: its own if it exists, else a new file's under the umask
    (``mkstemp``'s private 0600 would hide a shared golden set from the rest of a team or a CI user)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary sibling, flushed to disk, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    """:func:`write_bytes` of ``text`` in UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def temporary_sibling(path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) for a writer that wants a file name (soundfile,
    matplotlib); renamed onto ``path`` when the block ends without an error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, _file_mode(path))
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _sibling(root: Path, kind: str) -> Path:
    return root.parent / f".{root.name}.{kind}"


def _real(root) -> Path:
    """``root`` with a symlinked last component resolved (a link to a golden set updates the set itself)."""
    root = Path(root)
    return root.resolve() if root.is_symlink() else root


def lock_file(root) -> Path:
    """Where the writer's lock of ``root`` lives: the machine's temporary directory, named by the absolute
    path (no lock files are left among a project's files)."""
    key = hashlib.sha1(str(Path(root).absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "audioldm2-harness-locks" / f"{key}.lock"


@contextlib.contextmanager
def locked(root) -> Iterator[None]:
    """Hold the writer's lock of directory ``root`` for the block.

    Raises :class:`~harness.errors.GoldenError` naming the holder's pid when another process holds it.
    """
    root = _real(root)
    path = lock_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise GoldenError(f"{root}: another process (pid {holder}) is writing it; wait for it to finish "
                              f"(or stop it), then run this again") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def recover(root) -> None:
    """Finish what a kill interrupted: if ``root`` is gone but the previous set it replaced is still
    beside it (killed between the two renames of :func:`replacing`), put the previous set back. Does
    nothing while a writer holds the lock."""
    root = _real(root)
    previous = _sibling(root, "previous")
    if not previous.exists() or root.exists():
        return
    with contextlib.suppress(GoldenError), locked(root):
        if previous.exists() and not root.exists():
            os.replace(previous, root)


def _recover_locked(root: Path) -> None:
    previous = _sibling(root, "previous")
    if previous.exists() and not root.exists():
        os.replace(previous, root)


@contextlib.contextmanager
def replacing(root, keep: bool = True) -> Iterator[Path]:
    """Build a new version of directory ``root`` and swap it in whole when the block succeeds.

    Yields a staging directory beside ``root`` (a copy of the current one when ``keep``, else empty).
    When the block ends without an error the current ``root`` is renamed aside, the staging directory
    renamed to ``root``, and the old one deleted; on an error, or if the process is killed, ``root`` is
    untouched (:func:`recover` completes the one step a kill can interrupt). Holds :func:`locked`.
    """
    root = _real(root)
    with locked(root):
        _recover_locked(root)
        for stale in root.parent.glob(f".{root.name}.staging-*"):  # left by a killed writer
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(_sibling(root, "previous"), ignore_errors=True)
        staging = _sibling(root, f"staging-{os.getpid()}")
        if keep and root.exists():
            shutil.copytree(root, staging, symlinks=True)
        else:
            staging.mkdir(parents=True)
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        previous = _sibling(root, "previous")
        if root.exists():
            os.replace(root, previous)
        os.replace(staging, root)
        shutil.rmtree(previous, ignore_errors=True)
