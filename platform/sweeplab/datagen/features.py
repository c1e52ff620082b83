"""Synthetic "features with strengths" (after Xue et al., ICLR 2024, the projection-head paper): vectors made of
independent binary features of chosen strengths, whose downstream label is one chosen feature.

Sample: latent signs ``z_k`` in {-1, +1} (uniform, independent) for k < len(strengths);
``x = sum_k strengths[k] z_k e_k + noise_std * xi`` in ``dim`` coordinates, feature k on coordinate k, the rest
noise only. Label: the sign of feature ``label_feature``, one-hot over 2 classes.

Axis-aligned on purpose: an augmentation that drops chosen coordinates (``FeatureDropout`` with one probability
per coordinate) then weakens chosen features, the setting in which the pre-projection features keep what the
contrastive loss under-weights. Only numpy and pydantic are imported.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sweeplab.data._splits import split_in_order

__all__ = ["FeatureStrengthsParams", "generate_feature_strengths"]


class FeatureStrengthsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(2000, ge=1, description="Training samples.")
    n_val: int = Field(500, ge=1, description="Validation samples.")
    n_test: int = Field(500, ge=1, description="Test samples.")
    strengths: list[float] = Field([1.0, 1.0, 1.0, 1.0], min_length=1, description="Scale of each feature.")
    dim: int = Field(16, ge=1, description="Coordinates of a sample (>= the number of features).")
    noise_std: float = Field(0.1, ge=0.0, description="Standard deviation of the Gaussian noise on every coordinate.")
    label_feature: int = Field(3, ge=0, description="The feature whose sign is the downstream label.")
    seed: int = Field(0, ge=0, description="Seed of the samples.")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureStrengthsParams:
        if len(self.strengths) > self.dim:
            raise ValueError(f"{len(self.strengths)} features do not fit in dim {self.dim}")
        if self.label_feature >= len(self.strengths):
            raise ValueError(f"label_feature {self.label_feature} is not one of the {len(self.strengths)} features")
        return self

    @property
    def in_channels(self) -> int:
        return self.dim


def generate_feature_strengths(params: FeatureStrengthsParams) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(params.seed)
    n = params.n_train + params.n_val + params.n_test
    signs = rng.choice([-1.0, 1.0], size=(n, len(params.strengths)))
    x = params.noise_std * rng.standard_normal((n, params.dim))
    x[:, : len(params.strengths)] += signs * np.asarray(params.strengths)
    labels = (signs[:, params.label_feature] > 0).astype(int)
    sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    return split_in_order(x.astype(np.float32), np.eye(2, dtype=np.float32)[labels], sizes)
