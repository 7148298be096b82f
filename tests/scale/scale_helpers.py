"""Constants shared by the scale-out tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY_FLAGS = dict(model_size="toy-small", ds_name="synthetic", n_docs=290, n_test_docs=101, epochs=1,
                  minibatch_size_per_device=8)
"""145 training docs: 4 full batches of 32 (the 17 left over are not trained on, as in the reference); with 2
ranks and minibatches of 8, logconf sees several minibatches per rank. A fixed minibatch size no longer leaves a
rank a placeholder part (only automatic minibatches can: test_deal_gives_every_rank_one_part_per_planned_minibatch)."""
