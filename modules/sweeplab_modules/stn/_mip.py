"""Magnitude-invariant parametrisation of a hypernetwork's input (MIP; Ortiz, Guttag, Dalca, "Magnitude Invariant
Parametrizations Improve Hypernetwork Learning", ICLR 2024, arXiv 2304.07645).

A hypernetwork ``theta = h(gamma)`` whose first layer is linear makes the size of its output, the primary
network's weights, grow with the size of its input: a hyperparameter near the low end of its range gives nearly
no response, one far out a large one, and the weights' scale moves with the hyperparameters, which slows and
destabilises training. MIP encodes each input ``gamma in [0, 1]`` as ``[cos(pi gamma / 2), sin(pi gamma / 2)]``,
a point on the unit quarter circle, so the encoding has the same norm for every hyperparameter value; and the
hypernetwork's output is added to weights of their own, ``theta = theta_0 + Delta theta(gamma)``.

In a Self-Tuning Network the hypernetwork is the best-response gating (stn/_layers.py): the layer's own
weights are ``theta_0`` (initialised as the primary network's), the gated response ``Delta theta``, so the
additive form is already there; ``hypernet_input: mip`` feeds the gates the encoding of where each hyperparameter
lies in its declared range instead of the unconstrained values (whose magnitude is arbitrary: a dropout rate of
0.05 in (0, 0.8) is -2.7 unconstrained, 0.4 is 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["magnitude_invariant_encoding"]


def magnitude_invariant_encoding(fractions: Tensor) -> Tensor:
    """``(rows, k)`` values in ``[0, 1]`` (rescaled to it: outside, distinct values may share a code) ->
    ``(rows, 2 k)``: the cosines of ``pi / 2`` times each, then the sines; each (cos, sin) pair has unit norm, so
    every row has norm ``sqrt(k)``."""
    angles = (math.pi / 2) * fractions
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
