"""The trained module of a best trial rebuilt from its checkpoint and ``ModelDescription``: the architecture as its
strategy converted it, inside its task with the normalisers fitted on the training split, mapping inputs in
physical units to outputs in physical units. The checkpoint is read with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sweeplab.record import ModelDescription
from sweeplab_modules.registry import build_model, import_target
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.tasks.operator import OperatorLearning
from sweeplab_modules.training import TrainingConfig

__all__ = ["PhysicalModel", "rebuild"]


class PhysicalModel(nn.Module):
    """A trained task's network between its normalisers: ``forward`` takes inputs in physical units,
    (batch, channels, *grid), and returns outputs in physical units; an operator on a time window rolls out over
    ``horizon`` snapshots. Classification and representation tasks return the network's outputs (logits,
    embeddings) for standardised inputs; a task with its own ``forward`` (assimilation) is called as it is.
    ``description`` is what it was rebuilt from."""

    def __init__(self, task: nn.Module, description: ModelDescription) -> None:
        super().__init__()
        self.task = task
        self.description = description

    @property
    def network(self) -> nn.Module:
        """The architecture alone (as trained: with its strategy's regularisers or best-response layers)."""
        return self.task.model

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming what is wrong when inputs of ``shape`` do not fit: (batch, channels, *grid) with
        the training inputs' channels, on their grid unless the architecture is resolution invariant."""
        trained = self.description.input_shape
        if trained is None:
            return
        grid = " x ".join(map(str, trained[1:]))
        if self.description.resolution_invariant:
            grid = f"any {len(trained) - 1}-D grid, trained on {grid}"
        expected = f"(batch, channels={trained[0]}, {grid})" if len(trained) > 1 else f"(batch, {trained[0]})"
        if len(shape) == len(trained) and shape[:1] == tuple(trained[:1]):
            raise ValueError(f"got one sample of shape {shape}, expected {expected}: add a leading batch axis")
        if len(shape) != len(trained) + 1:
            raise ValueError(f"got shape {shape} ({len(shape)} dimensions), expected {expected}")
        if shape[1] != trained[0]:
            last = " (channels last? sweeplab takes channels first)" if shape[-1] == trained[0] else ""
            raise ValueError(f"got {shape[1]} channels in shape {shape}, expected {expected}{last}")
        if not self.description.resolution_invariant and list(shape[2:]) != trained[1:]:
            raise ValueError(
                f"got grid {tuple(shape[2:])}, expected {expected}: {self.description.architecture} is not "
                "resolution invariant"
            )

    @torch.no_grad()
    def predict(self, inputs: Any, batch_size: int = 64) -> np.ndarray:
        """Outputs for an array of inputs (checked with ``check_input``), in batches of ``batch_size``: float32."""
        array = np.asarray(inputs, dtype=np.float32)
        self.check_input(array.shape)
        batches = torch.as_tensor(array).split(batch_size)
        return torch.cat([self(batch) for batch in batches]).numpy()

    def forward(self, x: Tensor) -> Tensor:
        task = self.task
        if isinstance(task, OperatorLearning):
            return task.predict(x, self.description.horizon or 0)
        if hasattr(task, "normalised"):  # labelled tasks: the network on standardised inputs
            return task.model(task.normalised(x))
        if type(task).forward is not SweepTask.forward:  # a task that maps physical units itself (assimilation)
            return task(x)
        return task.model(x)


def rebuild(description: ModelDescription, checkpoint: Path) -> PhysicalModel:
    """The module ``checkpoint`` holds the weights of, in eval mode on the CPU."""
    if description.task is None or description.in_channels is None or description.out_channels is None:
        raise ValueError(
            f"{description.architecture}: this model description predates the task and channels that rebuild it "
            "(recorded by an older sweeplab); train the study again to serve it"
        )
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    network = build_model(
        description.architecture, description.in_channels, description.out_channels, **description.params
    )
    extra: dict[str, nn.Module] = {}
    if description.strategy != "plain":
        network, extra = _converted(network, description)
    task_class = import_target(description.task)
    task = task_class(
        network,
        TrainingConfig(**description.training),
        in_channels=description.in_channels,
        out_channels=description.out_channels,
    )
    for name, module in extra.items():  # the self-tuning task's hyperparameters: part of its state
        setattr(task, name, module)
    task.load_state_dict(state)
    if description.time_window is not None:
        from sweeplab.data import TimeWindow

        task.time_window = TimeWindow(**description.time_window)
    return PhysicalModel(task, description).eval()


def _converted(network: nn.Module, description: ModelDescription) -> tuple[nn.Module, dict[str, Any]]:
    """``network`` converted as its strategy converted it for training, and the task's extra modules."""
    from sweeplab_modules.stn import HyperContext, OnlineHyperparameter, regularised, self_tuning_model

    declarations = {name: OnlineHyperparameter(**fields) for name, fields in description.hyperparameters.items()}
    if description.strategy == "self_tuning":
        converted, space, _ = self_tuning_model(network, declarations)
        return converted, {"space": space}
    if description.strategy == "optuna":
        return regularised(network, declarations, HyperContext()), {}
    raise ValueError(f"unknown strategy {description.strategy!r} in the model description")
