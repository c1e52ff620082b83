"""Hyperparameters as trainable tensors: the unconstrained values and perturbation scales, their transforms to
the declared ranges, and the context through which the layers of a model read the values of the current batch."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab_modules.stn._mip import magnitude_invariant_encoding
from sweeplab_modules.stn._settings import HYPERNET_INPUTS, OnlineHyperparameter

__all__ = ["HyperContext", "HyperparameterSpace", "applied_value", "constrained_value"]


def constrained_value(declaration: OnlineHyperparameter, unconstrained: Tensor) -> Tensor:
    """The continuous value in the declared range (for floor, before flooring: what the schedule records)."""
    if declaration.mapping == "softplus":
        return (declaration.low + F.softplus(unconstrained)).clamp_max(declaration.high)
    return declaration.low + declaration.span * torch.sigmoid(unconstrained)


def applied_value(declaration: OnlineHyperparameter, value: Tensor) -> Tensor:
    """What training applies for a continuous ``value``: a discrete hyperparameter is floored (into its range)."""
    if declaration.discrete:
        return value.floor().clamp(declaration.low, declaration.high)
    return value


class HyperparameterSpace(nn.Module):
    """The hyperparameters lambda (unconstrained) and the raw perturbation scales sigma (softplus(sigma) is the
    standard deviation of the Gaussian perturbation in the unconstrained space), in declaration order."""

    def __init__(self, declarations: Mapping[str, OnlineHyperparameter]) -> None:
        super().__init__()
        if not declarations:
            raise ValueError("a self-tuning model needs at least one hyperparameter")
        self.declarations = dict(declarations)
        self.names = list(declarations)
        initial = [d.unconstrained_initial() for d in declarations.values()]
        raw_scales = [math.log(math.expm1(d.scale)) for d in declarations.values()]
        self.unconstrained = nn.Parameter(torch.tensor(initial))
        self.raw_scale = nn.Parameter(torch.tensor(raw_scales))

    def __len__(self) -> int:
        return len(self.names)

    def scales(self) -> Tensor:
        return F.softplus(self.raw_scale)

    def perturbed(self, batch_size: int) -> Tensor:
        """(batch, hyperparameters): one draw of lambda + softplus(sigma) * eps per example."""
        noise = torch.randn(batch_size, len(self), device=self.unconstrained.device)
        return self.unconstrained + self.scales() * noise

    def entropy(self) -> Tensor:
        """Entropy of the perturbation distribution, up to a constant: sum of log scales."""
        return torch.log(self.scales()).sum()

    def applied(self, unconstrained: Tensor) -> dict[str, Tensor]:
        """Per example (first dimension), the value each hyperparameter is applied with."""
        return {
            name: applied_value(
                self.declarations[name], constrained_value(self.declarations[name], unconstrained[:, i])
            )
            for i, name in enumerate(self.names)
        }

    def fractions(self, unconstrained: Tensor) -> Tensor:
        """(rows, hyperparameters): where each continuous value lies in its range, ``(value - low) / span`` in
        [0, 1], computed from the unconstrained value directly (no rounding past the ends)."""
        columns = [
            (F.softplus(unconstrained[:, i]) / declared.span).clamp_max(1.0)
            if declared.mapping == "softplus"
            else torch.sigmoid(unconstrained[:, i])
            for i, declared in enumerate(self.declarations.values())
        ]
        return torch.stack(columns, dim=1)

    @torch.no_grad()
    def current(self) -> dict[str, float]:
        """The schedule's point now: each hyperparameter's continuous value and ``<name>_scale``."""
        values = {
            name: float(constrained_value(self.declarations[name], self.unconstrained[i]))
            for i, name in enumerate(self.names)
        }
        scales = {f"{name}_scale": float(scale) for name, scale in zip(self.names, self.scales(), strict=True)}
        return values | scales


class HyperContext:
    """What the layers of a model read during one forward pass: the hypernetwork input (from the unconstrained
    values, one row per example or one row for the whole batch) and the values the regularisers apply. Outside a
    step the best-response layers see the current hyperparameters (``space``), unperturbed.

    ``hypernet_input`` is what the best-response gates read: ``unconstrained``, the values themselves (the STN
    paper), or ``mip``, the magnitude-invariant encoding of where each value lies in its range (needs ``space``).
    """

    def __init__(self, space: HyperparameterSpace | None = None, hypernet_input: str = "unconstrained") -> None:
        if hypernet_input not in HYPERNET_INPUTS:
            raise ValueError(f"hypernet_input must be one of {HYPERNET_INPUTS}, got {hypernet_input!r}")
        if hypernet_input == "mip" and space is None:
            raise ValueError("the mip hypernetwork input needs the HyperparameterSpace (the declared ranges)")
        self.space = space
        self.encoding = hypernet_input
        self.unconstrained: Tensor | None = None
        self.values: dict[str, Tensor] = {}

    def input_size(self, n_hyperparameters: int) -> int:
        """How many inputs the gates of ``n_hyperparameters`` hyperparameters read."""
        return 2 * n_hyperparameters if self.encoding == "mip" else n_hyperparameters

    def set(self, unconstrained: Tensor | None, values: Mapping[str, Tensor]) -> None:
        self.unconstrained = unconstrained
        self.values = dict(values)

    def clear(self) -> None:
        self.set(None, {})

    def hypernet_input(self, batch_size: int) -> Tensor:
        """(batch or 1, hyperparameters) for a best-response layer seeing ``batch_size`` examples."""
        if self.unconstrained is None:
            if self.space is None:
                raise RuntimeError("a best-response layer needs a HyperparameterSpace or values set for the batch")
            unconstrained = self.space.unconstrained.detach()[None]
        else:
            unconstrained = self.unconstrained
            rows = unconstrained.shape[0]
            if rows not in (1, batch_size):
                raise ValueError(
                    f"hyperparameters were drawn for {rows} examples but a layer sees a batch of {batch_size}: "
                    "per-example hyperparameters need the batch as the first dimension throughout the model"
                )
        if self.encoding == "mip":
            assert self.space is not None
            return magnitude_invariant_encoding(self.space.fractions(unconstrained))
        return unconstrained

    def value(self, name: str, batch_size: int) -> Tensor | None:
        """(batch or 1,) values of ``name`` for a regulariser, or None when none are set (it is then off)."""
        value = self.values.get(name)
        if value is not None and value.shape[0] not in (1, batch_size):
            raise ValueError(f"{name}: {value.shape[0]} values for a batch of {batch_size}")
        return value
