"""Run train_simple.py, dying like kill -9 right after the K-th atomic publication (a file or folder renamed into
place by weak_to_strong.atomic). K=0 runs to the end and prints how many publications there were.

    python tests/kill_at_write.py K --model_size=... (train_simple.py's flags)

Used by tests/test_reliability.py's fault-injection test; not a test module itself.
"""

import os
import sys

from weak_to_strong import atomic
from weak_to_strong.cli import main

KILLED = 137


class PublishCounter:
    """Stands in for the `os` module inside weak_to_strong.atomic: counts renames, dies after the K-th."""

    def __init__(self, kill_after: int):
        self.kill_after = kill_after
        self.count = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def published(self) -> None:
        self.count += 1
        if self.count == self.kill_after:
            os._exit(KILLED)  # no cleanup, no finally blocks: what kill -9 leaves behind

    def replace(self, src, dst):
        os.replace(src, dst)
        self.published()

    def rename(self, src, dst):
        os.rename(src, dst)
        self.published()


if __name__ == "__main__":
    counter = PublishCounter(int(sys.argv[1]))
    atomic.os = counter
    sys.argv = [sys.argv[0]] + sys.argv[2:]
    try:
        main("train_simple")
    finally:
        print(f"publications: {counter.count}")
