"""Ground-truth runs for every size, then every weak->strong pair, as train_simple subprocesses.

    python sweep.py --model_sizes=gpt2,gpt2-medium
    python sweep.py --model_sizes=toy-small,toy-large --ds_name=synthetic --n_docs=10000 --n_test_docs=1000
    python sweep.py --model_sizes=gpt2,gpt2-medium,gpt2-large --seeds=0,1,2 --executor=local --gpus=0,1,2,3
    python sweep.py --model_sizes=gpt2,gpt2-xl --executor=slurm --slurm_partition=gpu --gpus_per_run=2
    python sweep.py --model_sizes=gpt2,gpt2-medium --executor=local --gpus=0,1 --dry_run   # print the plan
    python sweep.py --model_sizes=tb-s,tb-m,tb-l,tb-xl --ds_name=testbed_knowledge --bootstrap=True   # + a chain
    python sweep.py --model_sizes=gpt2,gpt2-medium --ensemble_seeds=0,1,2 --s2s_rounds=2 --early_stop=0.2

Runs one after another by default; --executor=local or slurm starts each run as
soon as the run it needs (a transfer run's weak run) is done, skipping finished
runs. Every other flag is forwarded to train_simple.py; prints each run's
accuracy and the PGR. The stages (--bootstrap, --ensemble_seeds, --s2s_rounds,
--early_stop, --unsup_epochs) are described in the README, under Stages.
"""

from weak_to_strong.cli import main

if __name__ == "__main__":
    main("sweep")
