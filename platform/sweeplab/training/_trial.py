"""Train one trial: build the architecture and its task, fit with Lightning, test, save the weights."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab.record import CHECKPOINT_FILE, DEVICE_TAG, EPOCHS_METRIC, FIT_SECONDS_METRIC, LOSS_PARAM, N_PARAMS
from sweeplab.training._device import trial_gpu
from sweeplab_modules.registry import build_model, import_target

if TYPE_CHECKING:
    import optuna
    import pytorch_lightning as pl
    from torch import nn

    from sweeplab.data import OperatorData
    from sweeplab.spec import Study, TrialPlan
    from sweeplab.tracking import TrackedRun
    from sweeplab_modules.tasks.base import SweepTask


@dataclass(frozen=True)
class TrialContext:
    """One training of a trial, everything a trainer gets: what to train (``study``, ``plan``) on which ``data``,
    the MLflow run it records into (``run``), a scratch folder, the Lightning callbacks the engine puts on it
    (pruning, guards, progress) and the Optuna trial (None for a replay)."""

    study: Study
    plan: TrialPlan
    data: OperatorData
    run: TrackedRun
    workdir: Path
    callbacks: tuple[pl.Callback, ...] = ()
    trial: optuna.Trial | None = None


@dataclass(frozen=True)
class TrialResult:
    metrics: dict[str, float]
    """The last value of every metric the task logged (validation at the last epoch, test), plus n_params,
    fit_seconds and epochs."""
    checkpoint: Path


def quiet_lightning() -> None:
    """Lightning's banner lines ("GPU available: ...", tips) would bury the progress display."""
    import pytorch_lightning  # noqa: F401 - it sets its loggers' levels on import; ours must come after

    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|smaller than the logging interval).*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


def train_trial(context: TrialContext) -> TrialResult:
    """The plain trial: the registered architecture in the study's task, fitted and tested."""
    task = build_task(context.study, context.plan, build_seeded_model(context.study, context.plan))
    return fit_task(context, task, context.study.spec.trainer.gradient_clip_val)


def build_seeded_model(study: Study, plan: TrialPlan) -> nn.Module:
    """The trial's architecture, initialised from the study's seed."""
    import pytorch_lightning as pl

    pl.seed_everything(study.spec.trainer.seed, verbose=False)
    return build_model(plan.model_name, *study.data_channels, **plan.model_params)


def build_task(study: Study, plan: TrialPlan, model: nn.Module, task_class: type | None = None) -> SweepTask:
    """``model`` in the study's task (or in ``task_class``, a variant of it)."""
    in_channels, out_channels = study.data_channels
    task_class = task_class or import_target(study.task.target)
    return task_class(model, plan.training, in_channels=in_channels, out_channels=out_channels)


def fit_task(
    context: TrialContext, task: SweepTask, gradient_clip_val: float | None, extra_callbacks: Sequence[pl.Callback] = ()
) -> TrialResult:
    """Fit ``task`` on the trial's data, test it, save its weights; every strategy's trials end here. The metrics
    are flushed to the run; ending the run is the engine's (it still logs the checkpoint of a best trial)."""
    import pytorch_lightning as pl

    from sweeplab.data.datamodule import OperatorDataModule
    from sweeplab.tracking._lightning import BufferedMlflowLogger

    trainer_spec = context.study.spec.trainer
    batch_size = context.plan.training.batch_size
    datamodule = OperatorDataModule(context.data, batch_size=batch_size, seed=trainer_spec.seed)
    logger = BufferedMlflowLogger(context.run.metrics)
    gpu = trial_gpu()  # the runner's placement over this host's GPUs
    trainer = pl.Trainer(
        max_epochs=trainer_spec.max_epochs,
        accelerator=trainer_spec.accelerator if gpu is None else "cuda",
        devices=trainer_spec.devices if gpu is None else [gpu],
        precision=trainer_spec.precision,  # type: ignore[arg-type]
        deterministic=trainer_spec.deterministic,
        gradient_clip_val=gradient_clip_val,
        logger=logger,
        callbacks=[*context.callbacks, *extra_callbacks],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # Evaluation under no_grad, not inference mode: a TorchScript graph (geoopt's manifold maths) optimised
        # during an inference-mode pass keeps inference tensors as constants, and the next trial of the process
        # then fails in training ("Inference tensors cannot be saved for backward").
        inference_mode=False,
        default_root_dir=context.workdir,
    )
    # The loss actually used: a study that leaves it to the task's default records that default, not None.
    params = {N_PARAMS: task.n_params, LOSS_PARAM: getattr(task, "loss_name", context.plan.training.loss)}
    context.run.log(params=params, tags={DEVICE_TAG: _device_name(trainer)})
    started = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    fit_seconds = time.perf_counter() - started
    trainer.test(task, datamodule=datamodule, verbose=False)
    checkpoint = context.workdir / CHECKPOINT_FILE
    trainer.save_checkpoint(checkpoint, weights_only=True)
    platform_metrics: dict[str, Any] = {
        N_PARAMS: task.n_params,
        FIT_SECONDS_METRIC: fit_seconds,
        EPOCHS_METRIC: trainer.current_epoch,
    }
    context.run.metrics.add(platform_metrics, step=trainer.current_epoch)
    context.run.metrics.flush()
    return TrialResult({**logger.last, **platform_metrics}, checkpoint)


def _device_name(trainer: pl.Trainer) -> str:
    """Where the trial trained, e.g. ``cuda:0 (NVIDIA H200)`` or ``cpu (2 threads)``: part of what makes a timing
    comparable."""
    import torch

    device = trainer.strategy.root_device
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    return str(device)
