"""Run several train_simple runs in one torchrun launch (one process group, one start-up cost).

    torchrun --nproc_per_node=2 tests/scale/distributed_driver.py '[{"model_size": "toy-small", ...}, ...]'

Each item goes through the CLI's own entry point (flag checks, quiet libraries), as `train_simple.py` would.
"""

import json
import sys

from weak_to_strong.cli import train_simple

if __name__ == "__main__":
    for flags in json.loads(sys.argv[1]):
        train_simple(**flags)
