"""Constants shared by the scale-out tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY_FLAGS = dict(model_size="toy-small", ds_name="synthetic", n_docs=290, n_test_docs=101, epochs=1,
                  minibatch_size_per_device=8)
"""145 training docs: the last batch of 32 has 17, so with 2 ranks and minibatches of 8 one rank's last
part is a placeholder, and logconf sees several minibatches per rank."""
