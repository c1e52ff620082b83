"""Learned proximal networks (Fang, Buchanan, Sulam, "What's in a Prior? Learned Proximal Networks for Inverse
Problems", ICLR 2024; authors' code ZhenghanFang/learned-proximal-networks).

The network is f(y) = grad psi(y) with psi an input-convex neural network (ICNN): every layer adds a
non-negative combination of the previous layer's convex features to an affine function of the input and applies
a convex, non-decreasing activation (softplus with sharpness ``beta``). psi is then convex in y, and the gradient
of a convex function is exactly the proximal operator of some (possibly nonconvex) regulariser R
(Gribonval & Nikolova 2020): f(y) = argmin_x 1/2 ||y - x||^2 + R(x). The non-negativity is kept by clamping the
hidden-to-hidden weights after every optimiser step (``clamp_weights``); the input "skip" weights are free.

Two potentials, as in the authors' experiments:
- ``mlp``: the 1-D Laplacian-prior example (input layer, ``layers`` convex hidden layers, a convex read-out plus
  an affine term in the input);
- ``conv``: the MNIST network generalised to ``image_size``: a 3x3 convolution, three convex 3x3 convolutions
  (strides 2, 1, 2) each with a skip convolution of the input resized bilinearly to its grid, a convex dense layer
  with a dense skip of the input at the coarsest grid, and a convex scalar read-out.
``strong_convexity`` alpha adds alpha ||y||^2 to psi (the MNIST setting: 0.01), which makes f invertible.

The proximal-matching training schedule (``ProximalMatchingSchedule``) travels with the network as its
``schedule``: pretraining with an l1 or l2 loss, then the proximal-matching loss
1 - exp(-(||f(y) - x|| / gamma)^2) with gamma lowered in stages; gamma is given per square root of the input
dimension (the authors' MNIST gamma_min is 0.08 sqrt(784)), so one setting serves every input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LearnedProximalNetwork", "ProximalMatchingSchedule", "convexity_violations"]

# The authors initialise the clamped weights to exp(N(-10, 0.1)): positive and tiny, so training starts from a
# potential dominated by its free affine/skip terms.
_CONVEX_INIT_MEAN, _CONVEX_INIT_STD = -10.0, 0.1


@dataclass(frozen=True)
class ProximalMatchingSchedule:
    """Which loss applies at each optimisation step of a proximal-matching run.

    The first ``pretrain_fraction`` of the steps train with ``pretrain_loss``; the rest is cut into ``stages``
    equal stages of proximal matching with gamma going from ``gamma_start`` to ``gamma_end`` (linearly: the
    authors' Laplace notebook 0.5, 0.4, ..., 0.1; geometrically: their MNIST script, halving each stage), in units
    of sqrt(dimension). The learning rate is multiplied by ``matching_lr_factor`` once matching starts (MNIST:
    1e-3 for pretraining, 1e-4 after).
    """

    pretrain_loss: Literal["l1", "l2"]
    pretrain_fraction: float
    gamma_start: float
    gamma_end: float
    stages: int
    gamma_spacing: Literal["linear", "geometric"]
    matching_lr_factor: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.pretrain_fraction < 1.0:
            raise ValueError(f"pretrain_fraction must be in [0, 1), got {self.pretrain_fraction}")
        if self.stages < 1:
            raise ValueError(f"stages must be >= 1, got {self.stages}")
        if not 0.0 < self.gamma_end <= self.gamma_start:
            raise ValueError(f"need 0 < gamma_end <= gamma_start, got {self.gamma_start} -> {self.gamma_end}")
        if self.matching_lr_factor <= 0.0:
            raise ValueError(f"matching_lr_factor must be > 0, got {self.matching_lr_factor}")

    @property
    def gammas(self) -> list[float]:
        """Gamma of each stage, per sqrt(dimension)."""
        if self.stages == 1:
            return [self.gamma_end]
        fractions = [stage / (self.stages - 1) for stage in range(self.stages)]
        if self.gamma_spacing == "linear":
            return [self.gamma_start + (self.gamma_end - self.gamma_start) * f for f in fractions]
        ratio = self.gamma_end / self.gamma_start
        return [self.gamma_start * ratio**f for f in fractions]

    def pretrain_steps(self, total_steps: int) -> int:
        return int(self.pretrain_fraction * total_steps)

    def gamma_at(self, step: int, total_steps: int) -> float | None:
        """Gamma (per sqrt(dimension)) at optimisation ``step`` of ``total_steps``; None while pretraining."""
        pretrain = self.pretrain_steps(total_steps)
        if step < pretrain:
            return None
        per_stage = max(1, (total_steps - pretrain) // self.stages)
        return self.gammas[min((step - pretrain) // per_stage, self.stages - 1)]

    def lr_factor_at(self, step: int, total_steps: int) -> float:
        return 1.0 if step < self.pretrain_steps(total_steps) else self.matching_lr_factor


class _ConvexLinear(nn.Linear):
    """A linear layer whose weights are kept non-negative (bias-free: the skip term carries the offset)."""


class _ConvexConv2d(nn.Conv2d):
    """A convolution whose weights are kept non-negative."""


class _MLPPotential(nn.Module):
    def __init__(self, dimension: int, hidden: int, layers: int, activation: nn.Module) -> None:
        super().__init__()
        self.activation = activation
        self.first = nn.Linear(dimension, hidden, bias=False)
        self.convex = nn.ModuleList([_ConvexLinear(hidden, hidden, bias=False) for _ in range(layers)])
        self.skips = nn.ModuleList([nn.Linear(dimension, hidden) for _ in range(layers)])
        self.readout = _ConvexLinear(hidden, 1, bias=False)
        # A constant in psi does not change its gradient: the read-out's input term has no bias.
        self.readout_skip = nn.Linear(dimension, 1, bias=False)

    def forward(self, y: Tensor) -> Tensor:
        y = y.flatten(start_dim=1)
        z = self.activation(self.first(y))
        for convex, skip in zip(self.convex, self.skips, strict=True):
            z = self.activation(convex(z) + skip(y))
        return (self.readout(z) + self.readout_skip(y)).squeeze(1)


class _ConvPotential(nn.Module):
    def __init__(self, channels: int, hidden: int, image_size: int, dense_width: int, activation: nn.Module) -> None:
        super().__init__()
        self.activation = activation
        self.image_size = image_size
        half = math.ceil(image_size / 2)  # the grid after a stride-2, padding-1, 3x3 convolution
        quarter = math.ceil(half / 2)
        # The grid each convex convolution's input lives on, where the input is resized for its skip.
        self.skip_sizes = (image_size, half, half)
        self.dense_size = quarter
        self.first = nn.Conv2d(channels, hidden, 3, padding=1, bias=False)
        strides = (2, 1, 2)
        self.convex = nn.ModuleList(
            [_ConvexConv2d(hidden, hidden, 3, stride=s, padding=1, bias=False) for s in strides]
        )
        self.skips = nn.ModuleList([nn.Conv2d(channels, hidden, 3, stride=s, padding=1) for s in strides])
        self.dense = _ConvexLinear(hidden * quarter * quarter, dense_width, bias=False)
        self.dense_skip = nn.Linear(channels * quarter * quarter, dense_width)
        self.readout = _ConvexLinear(dense_width, 1, bias=False)

    def _resized(self, y: Tensor, size: int) -> Tensor:
        return y if y.shape[-1] == size else F.interpolate(y, (size, size), mode="bilinear")

    def forward(self, y: Tensor) -> Tensor:
        if y.ndim != 4 or y.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected input (batch, channels, {self.image_size}, {self.image_size}), got {tuple(y.shape)}"
            )
        z = self.activation(self.first(y))
        for convex, skip, size in zip(self.convex, self.skips, self.skip_sizes, strict=True):
            z = self.activation(convex(z) + skip(self._resized(y, size)))
        coarse = self._resized(y, self.dense_size).flatten(start_dim=1)
        z = self.activation(self.dense(z.flatten(start_dim=1)) + self.dense_skip(coarse))
        return self.readout(z).squeeze(1)


class LearnedProximalNetwork(nn.Module):
    """f(y) = grad psi(y), psi an input-convex network: exactly a proximal operator (see the module docstring).

    ``in_channels`` is the dimension of a vector input (``mlp``) or the image channels (``conv``, images of
    ``image_size`` squared); the output has the input's shape, so ``out_channels`` must equal ``in_channels``.
    The schedule arguments build ``self.schedule`` (``ProximalMatchingSchedule``), read by the proximal task.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        potential: Literal["mlp", "conv"] = "mlp",
        hidden: int = 50,
        layers: int = 4,
        image_size: int = 28,
        dense_width: int = 64,
        beta: float = 10.0,
        strong_convexity: float = 0.0,
        pretrain_loss: Literal["l1", "l2"] = "l2",
        pretrain_fraction: float = 0.5,
        gamma_start: float = 0.5,
        gamma_end: float = 0.1,
        stages: int = 5,
        gamma_spacing: Literal["linear", "geometric"] = "linear",
        matching_lr_factor: float = 1.0,
    ) -> None:
        super().__init__()
        if out_channels != in_channels:
            raise ValueError(f"a proximal operator maps a space to itself: out_channels {out_channels} != in_channels")
        if hidden < 1 or layers < 1 or dense_width < 1:
            raise ValueError(f"hidden, layers and dense_width must be >= 1, got {hidden}, {layers}, {dense_width}")
        if beta <= 0.0 or strong_convexity < 0.0:
            raise ValueError(f"need beta > 0 and strong_convexity >= 0, got {beta}, {strong_convexity}")
        activation = nn.Softplus(beta=beta)
        self.potential_network: nn.Module
        if potential == "mlp":
            self.potential_network = _MLPPotential(in_channels, hidden, layers, activation)
        elif potential == "conv":
            if image_size < 4:
                raise ValueError(f"image_size must be >= 4, got {image_size}")
            self.potential_network = _ConvPotential(in_channels, hidden, image_size, dense_width, activation)
        else:
            raise ValueError(f"potential must be 'mlp' or 'conv', got {potential!r}")
        self.strong_convexity = strong_convexity
        self.schedule = ProximalMatchingSchedule(
            pretrain_loss, pretrain_fraction, gamma_start, gamma_end, stages, gamma_spacing, matching_lr_factor
        )
        with torch.no_grad():
            for layer in self.convex_layers():
                layer.weight.normal_(_CONVEX_INIT_MEAN, _CONVEX_INIT_STD).exp_()

    def convex_layers(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (_ConvexLinear, _ConvexConv2d))]

    @torch.no_grad()
    def clamp_weights(self) -> None:
        """Project the hidden-to-hidden weights onto the non-negative orthant: psi stays convex."""
        for layer in self.convex_layers():
            layer.weight.clamp_(min=0.0)

    def potential(self, y: Tensor) -> Tensor:
        """psi(y), one value per sample."""
        value = self.potential_network(y)
        if self.strong_convexity:
            value = value + self.strong_convexity * y.flatten(start_dim=1).pow(2).sum(dim=1)
        return value

    def forward(self, y: Tensor) -> Tensor:
        # The gradient is taken even under no_grad or Lightning's inference mode (validation); the graph through
        # it is kept only when the caller records gradients (training: the loss differentiates through f).
        keep_graph = torch.is_grad_enabled()
        with torch.inference_mode(False), torch.enable_grad():
            point = y if y.requires_grad else y.clone().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.potential(point).sum(), point, create_graph=keep_graph)
        return gradient


@torch.no_grad()
def convexity_violations(network: LearnedProximalNetwork, samples: Tensor, seed: int = 0) -> Tensor:
    """Fraction of random chords on which psi breaks Jensen's inequality beyond rounding.

    Pairs each sample with another (a fixed random permutation) and a random t in (0, 1), and checks
    psi(t a + (1 - t) b) <= t psi(a) + (1 - t) psi(b); the tolerance is a few hundred float32 roundings of the
    values compared. 0 for every convex psi; the learned map is then a proximal operator.
    """
    psi = network.potential
    generator = torch.Generator().manual_seed(seed)
    n = samples.shape[0]
    partner = samples[torch.randperm(n, generator=generator).to(samples.device)]
    t = torch.rand(n, generator=generator).to(samples)
    t_grid = t.view(-1, *[1] * (samples.ndim - 1))
    chord = t * psi(samples) + (1.0 - t) * psi(partner)
    value = psi(t_grid * samples + (1.0 - t_grid) * partner)
    scale = psi(samples).abs() + psi(partner).abs() + 1.0
    tolerance = 256 * torch.finfo(samples.dtype).eps * scale
    return (value - chord > tolerance).float().mean()
