"""One weak->strong pair in one process: the weak model and the strong ceiling on
ground truth, then the strong model on the weak labels once per transfer loss.

    python train_weak_to_strong.py --weak_model_size=gpt2 --strong_model_size=gpt2-medium --ds_name=sciq
    python train_weak_to_strong.py --weak_model_size=toy-small --strong_model_size=toy-large \\
        --ds_name=synthetic --n_docs=4000 --n_test_docs=500       # offline, a minute on a CPU

Each stage is a train_simple.py run in the same results layout (finished ones are
reused); the accuracies go to RESULTS_FOLDER/<weak>_<strong>.results_summary.json.
Every flag: python train_weak_to_strong.py --help (documented in weak_to_strong/experiment.py).
"""

from weak_to_strong.cli import main

if __name__ == "__main__":
    main("train_weak_to_strong")
