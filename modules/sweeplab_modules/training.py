"""The optimisation hyperparameters every task shares (torch-free: the study spec validates against it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrainingConfig"]


class TrainingConfig(BaseModel):
    """Optimiser, schedule, batch size and loss: the shared search space of a study draws from these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adam", "adamw", "sgd"] = Field("adam", description="optimiser")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (decoupled for adamw)")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum, sgd only")
    batch_size: int = Field(20, ge=1, description="samples per optimisation step")
    scheduler: Literal["none", "step", "cosine", "cosine_power", "onecycle"] = Field(
        "none", description="learning-rate schedule"
    )
    step_size: int = Field(100, ge=1, description="epochs between decays, step scheduler")
    gamma: float = Field(0.5, gt=0, le=1, description="decay factor, step scheduler")
    annealing_power: float = Field(
        10.0, ge=1, description="power p of the cosine_power scheduler (sharpDARTS; 1 is cosine annealing)"
    )
    final_lr_fraction: float = Field(
        0.0, ge=0, lt=1, description="last learning rate as a fraction of lr, cosine and cosine_power schedulers"
    )
    loss: str | None = Field(None, description="training loss; None takes the task's default")
