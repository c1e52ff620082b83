"""What a study declares for self-tuning networks, torch-free (the study spec validates against it): the
hyperparameters tuned online and the settings of the hyper-training loop."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["APPLICATIONS", "HYPERNET_INPUTS", "TRANSFORMS", "OnlineHyperparameter", "SelfTuningSettings"]

# How a hyperparameter acts on training: dropout on the outputs of named modules, dropout of input entries,
# Gaussian noise on the (normalised) inputs, or a square cutout hole of a whole number of pixels per image.
APPLICATIONS = ("dropout", "input_dropout", "input_noise", "cutout")
# sigmoid: low + (high - low) * sigmoid(u); softplus: low + softplus(u), capped at high; floor: an integer in
# [low, high], the floor of low + (high + 1 - low) * sigmoid(u).
TRANSFORMS = ("sigmoid", "softplus", "floor")
# What the hypernetwork (the best-response gates) reads; see stn/_mip.py.
HYPERNET_INPUTS = ("unconstrained", "mip")
_DEFAULT_TRANSFORM = {"dropout": "sigmoid", "input_dropout": "sigmoid", "input_noise": "softplus", "cutout": "floor"}


class OnlineHyperparameter(BaseModel):
    """One hyperparameter tuned during training: how it is applied, its range and transform, where it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apply: Literal[APPLICATIONS]  # type: ignore[valid-type]
    at: list[str] = Field(default_factory=list, description="dropout only: module names (glob patterns)")
    transform: Literal[TRANSFORMS] | None = Field(None, description="default: by `apply`")  # type: ignore[valid-type]
    low: float = 0.0
    high: float
    initial: float
    scale: float = Field(0.5, gt=0, description="initial perturbation scale, in the unconstrained space")

    @property
    def mapping(self) -> str:
        return self.transform or _DEFAULT_TRANSFORM[self.apply]

    @property
    def discrete(self) -> bool:
        return self.mapping == "floor"

    @property
    def span(self) -> float:
        """Width of the continuous values' range: ``high - low``, one more for a discrete (floored) one."""
        return self.high + 1 - self.low if self.discrete else self.high - self.low

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for every inconsistency between the fields; empty when the declaration is usable."""
        found: list[tuple[str, str]] = []
        if self.high <= self.low:
            found.append(("high", f"must be > low ({self.high} <= {self.low})"))
        if self.apply in ("dropout", "input_dropout") and not (self.low >= 0 and self.high < 1):
            found.append(("high" if self.low >= 0 else "low", "a dropout rate range must lie in [0, 1)"))
        if self.apply in ("input_noise", "cutout") and self.low < 0:
            found.append(("low", f"must be >= 0 for {self.apply}"))
        if self.apply == "dropout" and not self.at:
            found.append(("at", "name the modules whose outputs are dropped (e.g. [encoder.layers.2])"))
        if self.apply != "dropout" and self.at:
            found.append(("at", f"only dropout is applied at modules; {self.apply} acts on the inputs"))
        if self.apply == "cutout" and self.mapping != "floor":
            found.append(("transform", "a cutout length is a whole number of pixels: use floor"))
        if self.discrete and not all(float(v).is_integer() for v in (self.low, self.high)):
            found.append(("low", "a discrete range needs integer low and high"))
        if self.mapping == "sigmoid" and not self.low < self.initial < self.high:
            found.append(("initial", f"must lie strictly inside ({self.low}, {self.high}) for a sigmoid transform"))
        elif self.mapping == "softplus" and not self.low < self.initial <= self.high:
            found.append(("initial", f"must lie in ({self.low}, {self.high}] for a softplus transform"))
        elif self.mapping == "floor" and not self.low <= self.initial <= self.high:
            found.append(("initial", f"must lie in [{self.low}, {self.high}]"))
        return found

    def unconstrained_initial(self) -> float:
        """The unconstrained value whose transform is ``initial`` (the middle of its integer cell for floor)."""
        if self.mapping == "softplus":
            return math.log(math.expm1(self.initial - self.low))
        fraction = (self.initial + (0.5 if self.discrete else 0.0) - self.low) / self.span
        return math.log(fraction / (1 - fraction))


class SelfTuningSettings(BaseModel):
    """The hyper-training loop (MacKay et al. 2019): after ``warmup_epochs`` of weight training with perturbed
    hyperparameters, every ``train_steps`` weight steps are followed by ``val_steps`` hyper steps with Adam at
    ``hyper_lr``; ``entropy_weight`` is the paper's tau. Each can be searched by the outer Optuna study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_epochs: int = Field(1, ge=0, description="epochs of weight training before the first hyper step")
    train_steps: int = Field(2, ge=1, description="weight steps between hyper steps")
    val_steps: int = Field(1, ge=1, description="hyper steps (validation batches) after each group of weight steps")
    hyper_lr: float = Field(3e-3, gt=0, description="Adam learning rate of the hyperparameters and their scales")
    entropy_weight: float = Field(1e-3, ge=0, description="tau: weight of the perturbation entropy")
    hypernet_input: Literal[HYPERNET_INPUTS] = Field(  # type: ignore[valid-type]
        "unconstrained",
        description="what the best-response gates read: the unconstrained hyperparameters (the STN paper) or "
        "mip, the magnitude-invariant encoding [cos, sin](pi gamma / 2) of each value rescaled to [0, 1] (Ortiz, "
        "Guttag, Dalca, ICLR 2024)",
    )
