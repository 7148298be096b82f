"""An OS file lock (fcntl.flock) that one run holds from its finished check to its last write.

The kernel releases the lock when its holder exits, even after kill -9, so a
crashed run never blocks later ones. Lock files stay in place: deleting one
while another process waits on it would let two processes hold "the" lock.
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def hold_lock(path: str | Path, waiting: str):
    """Hold an exclusive lock on `path` (created if missing); print `waiting` if another process holds it first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
