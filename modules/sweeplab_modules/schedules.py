"""Learning-rate schedules that torch does not ship, as multipliers of the peak learning rate (torch-free)."""

from __future__ import annotations

import math

__all__ = ["cosine_power_factor"]


def cosine_power_factor(epoch: int, total_epochs: int, power: float, final_fraction: float = 0.0) -> float:
    """Cosine power annealing (Hundt, Jain, Hager, "sharpDARTS", arXiv 1903.09900, eq. 1) as a multiplier of the
    peak learning rate at ``epoch`` (0-based) of ``total_epochs``:

    ``c = (1 + cos(pi t / T)) / 2``, ``lr = lr_min + (lr_max - lr_min) (p^(c + 1) - p) / (p^2 - p)``

    with ``lr_min = final_fraction * lr_max``. ``p = 1`` is the limit of the formula, cosine annealing (``c``);
    a larger ``p`` drops the rate faster early and more slowly late (the paper's default is 10). Epoch 0 runs at
    the peak, as torch's ``CosineAnnealingLR`` does; the formula reaches ``lr_min`` at ``t = T``.
    """
    if power < 1:
        raise ValueError(f"the power of cosine power annealing must be >= 1, got {power}")
    c = (1 + math.cos(math.pi * epoch / max(total_epochs, 1))) / 2
    shape = c if power == 1 else (power ** (c + 1) - power) / (power**2 - power)
    return final_fraction + (1 - final_fraction) * shape
