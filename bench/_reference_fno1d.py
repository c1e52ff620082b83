"""An independent implementation of the FNO authors' 1D formulation, the baseline of the Burgers reproduction.

Written from the paper (Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021,
arXiv 2010.08895, section 4 and appendix) and the description of the authors' ``fourier_1d.py`` training script, in
plain PyTorch: it imports neither sweeplab nor sweeplab_modules, so that a bug shared with them cannot hide.

Model: the input a(x) and the coordinate x (``linspace(0, 1, n)``, as the authors' script builds it) are lifted
pointwise to ``width`` channels; ``n_layers`` Fourier layers ``v <- act(K v + W v)`` follow (no activation after the
last), K multiplying the lowest ``modes`` rfft coefficients by learned complex matrices (initialised uniformly in
[0, 1/(width^2)) for real and imaginary parts), W a pointwise linear map; then pointwise ``width -> projection_width
-> act -> 1``. Training, as in the authors' script: Adam with weight decay applied to the gradient of the relative L2
loss summed over the batch, the rate multiplied by ``gamma`` every ``step_size`` epochs, shuffled batches.
Normalisation, as in the authors' current code (``UnitGaussianNormalizer``): inputs and outputs standardised per grid
point with the training set's mean and standard deviation (``(v - mean) / (std + 1e-5)``); the model is trained on
normalised inputs and its decoded outputs are compared in physical units. At another resolution the per-point
statistics are resampled on the periodic grid (nested points are exact; the others interpolated linearly).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = [
    "ReferenceFNO1d",
    "ReferenceSettings",
    "UnitGaussianNormalizer",
    "parameter_count",
    "relative_l2_per_sample",
    "train_reference",
]

_EPSILON = 1e-5  # the authors' normaliser's


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "gelu": nn.GELU()}[name]


class SpectralConvolution1d(nn.Module):
    """K: rfft, the lowest ``modes`` coefficients mixed across channels by complex weights, the rest zeroed, irfft."""

    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        self.weights = nn.Parameter(scale * torch.rand(channels, channels, modes, dtype=torch.cfloat))

    def forward(self, v: Tensor) -> Tensor:
        size = v.shape[-1]
        coefficients = torch.fft.rfft(v)
        mixed = torch.zeros(v.shape[0], self.weights.shape[1], size // 2 + 1, dtype=torch.cfloat, device=v.device)
        mixed[..., : self.modes] = torch.einsum("bim,iom->bom", coefficients[..., : self.modes], self.weights)
        return torch.fft.irfft(mixed, n=size)


class ReferenceFNO1d(nn.Module):
    """``(batch, n) -> (batch, n)``: the authors' FNO-1D on inputs of one channel."""

    def __init__(self, width: int, modes: int, n_layers: int, projection_width: int, activation: str) -> None:
        super().__init__()
        self.lift = nn.Linear(2, width)
        self.spectral = nn.ModuleList(SpectralConvolution1d(width, modes) for _ in range(n_layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(n_layers))
        self.activation = _activation(activation)
        self.project = nn.Sequential(nn.Linear(width, projection_width), _activation(activation))
        self.output = nn.Linear(projection_width, 1)

    def forward(self, a: Tensor) -> Tensor:
        grid = torch.linspace(0.0, 1.0, a.shape[-1], device=a.device).expand_as(a)
        v = self.lift(torch.stack([a, grid], dim=-1)).transpose(1, 2)  # (batch, width, n)
        for index, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            v = spectral(v) + pointwise(v)
            if index < len(self.spectral) - 1:
                v = self.activation(v)
        return self.output(self.project(v.transpose(1, 2))).squeeze(-1)


def _resample_periodic(values: Tensor, size: int) -> Tensor:
    """``values`` on x_j = j / m (periodic) at x_i = i / ``size``, linearly interpolated (exact at shared points)."""
    source = values.shape[-1]
    positions = torch.arange(size, dtype=torch.float64) * (source / size)
    left = positions.floor().long()
    weight = (positions - left).to(values.dtype)
    return values[..., left % source] * (1 - weight) + values[..., (left + 1) % source] * weight


@dataclass
class UnitGaussianNormalizer:
    """Per-grid-point mean and standard deviation over the training samples (the authors' normaliser)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, samples: Tensor) -> UnitGaussianNormalizer:
        return cls(samples.mean(dim=0), samples.std(dim=0))

    def at(self, size: int) -> UnitGaussianNormalizer:
        if size == self.mean.shape[-1]:
            return self
        return UnitGaussianNormalizer(_resample_periodic(self.mean, size), _resample_periodic(self.std, size))

    def encode(self, v: Tensor) -> Tensor:
        own = self.at(v.shape[-1])
        return (v - own.mean) / (own.std + _EPSILON)

    def decode(self, v: Tensor) -> Tensor:
        own = self.at(v.shape[-1])
        return v * (own.std + _EPSILON) + own.mean


def relative_l2_per_sample(prediction: Tensor, target: Tensor) -> Tensor:
    return torch.linalg.vector_norm(prediction - target, dim=-1) / torch.linalg.vector_norm(target, dim=-1)


@dataclass(frozen=True)
class ReferenceSettings:
    """The network and the authors' schedule (defaults: the FNO paper's Burgers setting)."""

    width: int = 64
    modes: int = 16
    n_layers: int = 4
    projection_width: int = 128
    activation: str = "relu"
    epochs: int = 500
    batch_size: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    step_size: int = 100
    gamma: float = 0.5
    seed: int = 0


@dataclass
class ReferenceResult:
    n_params: int
    seconds_per_epoch: float
    val_rel_l2: float
    test_rel_l2: dict[int, float]
    """At the training resolution and each other test resolution (zero-shot)."""
    history: list[dict[str, float]] = field(default_factory=list)


def _mean_error(
    model: ReferenceFNO1d,
    x: Tensor,
    y: Tensor,
    inputs: UnitGaussianNormalizer,
    outputs: UnitGaussianNormalizer,
    batch_size: int = 100,
) -> float:
    model.eval()
    with torch.no_grad():
        errors = [
            relative_l2_per_sample(outputs.decode(model(inputs.encode(x[i : i + batch_size]))), y[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(errors).mean().item()


def parameter_count(settings: ReferenceSettings) -> int:
    """Real parameters (a complex weight counts twice, as in the authors' count and sweeplab's)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in _model(settings).parameters())


def _model(settings: ReferenceSettings) -> ReferenceFNO1d:
    return ReferenceFNO1d(
        settings.width, settings.modes, settings.n_layers, settings.projection_width, settings.activation
    )


def train_reference(
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    tests: Mapping[int, tuple[Tensor, Tensor]],
    settings: ReferenceSettings,
    on_epoch: Callable[[dict[str, float]], None] = lambda record: None,
) -> ReferenceResult:
    """Train on ``(x_train, y_train)`` shaped (samples, n), report the validation error after every epoch (to
    ``on_epoch``) and the test errors at the end, for each grid size of ``tests`` ({size: (x, y)})."""
    torch.manual_seed(settings.seed)
    shuffle = torch.Generator().manual_seed(settings.seed)
    model = _model(settings)
    inputs, outputs = UnitGaussianNormalizer.fit(x_train), UnitGaussianNormalizer.fit(y_train)
    normalised_x = inputs.encode(x_train)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=settings.step_size, gamma=settings.gamma)
    history, started = [], time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        epoch_started, train_error = time.perf_counter(), 0.0
        for batch in torch.randperm(len(x_train), generator=shuffle).split(settings.batch_size):
            optimiser.zero_grad()
            loss = relative_l2_per_sample(outputs.decode(model(normalised_x[batch])), y_train[batch]).sum()
            loss.backward()
            optimiser.step()
            train_error += loss.item()
        scheduler.step()
        record = {
            "epoch": epoch + 1,
            "train_rel_l2": train_error / len(x_train),
            "val_rel_l2": _mean_error(model, x_val, y_val, inputs, outputs),
            "seconds": time.perf_counter() - epoch_started,
        }
        history.append(record)
        on_epoch(record)
    seconds_per_epoch = (time.perf_counter() - started) / max(settings.epochs, 1)
    return ReferenceResult(
        n_params=parameter_count(settings),
        seconds_per_epoch=seconds_per_epoch,
        val_rel_l2=history[-1]["val_rel_l2"] if history else float("nan"),
        test_rel_l2={size: _mean_error(model, x, y, inputs, outputs) for size, (x, y) in tests.items()},
        history=history,
    )
