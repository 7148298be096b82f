"""The names --loss and --lr_schedule take, for the layers that must not import torch.

config.py validates flags against these and plot.py orders losses by them without importing the
trainer (loss.py and train.py import torch). Each is a copy of its registry's keys, in its order
(loss.LOSSES, train.LR_SCHEDULES); tests/test_layers.py keeps the copies equal, so a new loss is still
one registry entry plus its name here.
"""

LOSS_NAMES = ("xent", "product", "logconf", "logconf_buffer", "logconf_balanced", "window", "confident", "adaptconf",
              "kl")
"""loss.LOSSES's keys: the order tables and figures list losses in."""
LR_SCHEDULE_NAMES = ("cosine_anneal", "constant")
"""train.LR_SCHEDULES."""
