"""Weak-to-strong generalization toolkit.

Train a weak model on ground truth, use its predictions as soft labels for a
strong model, and measure how much of the gap to the strong model's ceiling is
recovered (PGR). Importing this package touches no GPU and loads no model.
"""

__version__ = "0.1.0"
