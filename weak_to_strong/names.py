"""The names --loss and --lr_schedule take, for the layers that must not import torch.

config.py validates flags against these and plot.py orders losses by them without importing the
trainer (loss.py and train.py import torch). LOSS_NAMES is a copy of loss.LOSSES's keys, in its order;
tests/test_layers.py keeps the copy equal, so a new loss is still one registry entry plus its name here.
train.py takes its schedule names from here.
"""

LOSS_NAMES = ("xent", "product", "logconf", "logconf_buffer", "logconf_balanced", "window", "confident", "adaptconf",
              "kl")
"""loss.LOSSES's keys: the order tables and figures list losses in."""
LR_SCHEDULE_NAMES = ("cosine_anneal", "constant")
"""The schedules train.make_scheduler implements (train.LR_SCHEDULES is this tuple)."""
