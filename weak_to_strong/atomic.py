"""Atomic publication: every file or folder the toolkit writes appears whole under its final name, or not at all.

A writer fills a hidden sibling, `.NAME.tmp-HOST-PID-RANDOM`, then renames it
into place. A rename is atomic on one filesystem, so a reader (or a rerun after
kill -9) sees the old version or the new one, never half of one. The sibling is
created with `open`/`mkdir`, not `mkstemp`/`mkdtemp`, so the published file has
the modes the user's umask gives: a results folder shared on a cluster stays
readable by colleagues.

A killed writer leaves its sibling behind. The next write into the same folder
removes leftovers that are stale: written by a process of this host that is
gone, or older than a day (a process on another node of a shared filesystem
cannot be asked whether it still runs).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"
STALE_AFTER_S = 24 * 3600


def temp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def is_stale(entry: Path, now: float) -> bool:
    """A leftover temporary of a dead writer on this host, or one older than STALE_AFTER_S."""
    owner = entry.name.split(TMP_MARK, 1)[1]
    host, pid, _ = (owner.rsplit("-", 2) + ["", ""])[:3]
    if host == socket.gethostname() and pid.isdigit() and not is_alive(int(pid)):
        return True
    try:
        return now - entry.lstat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:  # removed by another cleaner meanwhile
        return False


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the stale temporaries in folder; returns what was removed."""
    now = time.time()
    removed = []
    try:
        entries = [e for e in Path(folder).iterdir() if e.name.startswith(".") and TMP_MARK in e.name]
    except FileNotFoundError:
        return removed
    for entry in entries:
        if is_stale(entry, now):
            remove_path(entry)
            removed.append(entry)
    return removed


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path):
    """Yields a temporary path to write; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        remove_path(tmp)


@contextmanager
def atomic_dir(path: str | Path, replace: bool = True, is_complete=None):
    """Yields an empty temporary folder to fill; on success it is renamed to `path`.

    replace=True: an existing `path` is replaced. replace=False: concurrent builders of the same
    content race, and the first rename wins; a loser's rename fails, which is fine when the winner's
    folder passes `is_complete` (default: it exists).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    tmp = temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        try:
            os.rename(tmp, path)
        except OSError:
            if replace or not (is_complete or Path.is_dir)(path):
                raise
    finally:
        remove_path(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj, **dump_kwargs) -> None:
    """JSON, indented; `dump_kwargs` go to json.dumps (e.g. allow_nan=False)."""
    write_text(path, json.dumps(obj, indent=2, **dump_kwargs))
