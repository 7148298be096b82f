"""Train one model on ground truth, or a strong model on a weak model's labels.

    python train_simple.py --model_size=gpt2 --ds_name=sciq                       # ground truth + weak labels
    python train_simple.py --model_size=gpt2-medium --weak_model_size=gpt2 --ds_name=sciq   # transfer
    python train_simple.py --model_size=toy-small --ds_name=synthetic --n_docs=2000 # offline, seconds

Every flag: python train_simple.py --help (documented in weak_to_strong/config.py).
"""

from weak_to_strong.cli import main

if __name__ == "__main__":
    main("train_simple")
