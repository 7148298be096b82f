"""Run several runs in one torchrun launch (one process group, one start-up cost).

    torchrun --nproc_per_node=2 tests/scale/distributed_driver.py '[{"model_size": "toy-small", ...}, ...]'

Each item goes through the CLI's own entry point (flag checks, quiet libraries): train_simple, or the
one its "command" key names (e.g. train_weak_to_strong).
"""

import json
import sys

from weak_to_strong import cli

if __name__ == "__main__":
    for flags in json.loads(sys.argv[1]):
        getattr(cli, flags.pop("command", "train_simple"))(**flags)
