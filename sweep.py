"""Ground-truth runs for every size, then every weak->strong pair, as train_simple subprocesses.

    python sweep.py --model_sizes=gpt2,gpt2-medium
    python sweep.py --model_sizes=toy-small,toy-large --ds_name=synthetic --n_docs=10000 --n_test_docs=1000

Every other flag is forwarded to train_simple.py; prints each run's accuracy and the PGR.
"""

from weak_to_strong.cli import main

if __name__ == "__main__":
    main("sweep")
