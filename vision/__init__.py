"""Stand-alone weak-to-strong vision experiment.

A weak supervisor (AlexNet by default) labels ImageNet validation images; a
linear probe on frozen features of a strong model (DINO ResNet-50 or ViT-B/8)
is trained on those weak labels and compared with the same probe trained on
ground truth. See ``vision/README.md`` and ``vision/run_weak_strong.py``.

Importing this package is cheap on purpose: no torchvision, no CUDA queries,
no registry mutation. The heavy dependencies are imported inside the
functions that need them.
"""
