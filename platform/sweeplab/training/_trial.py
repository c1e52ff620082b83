"""Train one trial: build the architecture and its task, fit with Lightning, test, save the weights."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab.record import (
    CHECKPOINT_FILE,
    DEVICE_TAG,
    EPOCHS_METRIC,
    FINETUNE_PREFIX,
    FIT_SECONDS_METRIC,
    LOSS_PARAM,
    N_PARAMS,
)
from sweeplab.training._device import trial_gpu
from sweeplab_modules.registry import build_model, import_target

if TYPE_CHECKING:
    import optuna
    import pytorch_lightning as pl
    from torch import nn

    from sweeplab.data import OperatorData
    from sweeplab.data.datamodule import OperatorDataModule
    from sweeplab.spec import FinetunePlan, Study, TrialPlan
    from sweeplab.tracking import TrackedRun
    from sweeplab.tracking._lightning import BufferedMlflowLogger
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


def flushing_subnormals() -> bool:
    """Whether this thread treats subnormal floats as zero (torch can set the mode but not read it)."""
    import torch

    return bool(torch.tensor([1e-39]) * 1.0 == 0)


@contextmanager
def subnormals_flushed(on: bool) -> Iterator[None]:
    """Subnormal floats treated as zero on the CPU (``on``) in this thread, and the threads it starts, for the
    block; the thread's setting is restored after it. Weights that decay towards zero become subnormal, and each
    operation on one costs many times a normal one: a trained FNO-1D's training steps took 1.6-2.3x as long."""
    import torch

    flushing = flushing_subnormals()
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(flushing)


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
    are flushed to the run; ending the run is the engine's (it still logs the checkpoint of a best trial).

    A plan with a second stage (``finetune``) trains on after the first stage's test (after its ``after_epochs``,
    else the trainer's ``max_epochs``): the parameters it names
    alone, with its settings, its metrics prefixed ``finetune/`` and its epochs counted on from the first
    stage's; then it is tested again. The weights saved are the last stage's."""
    from sweeplab.data.datamodule import OperatorDataModule
    from sweeplab.tracking._lightning import BufferedMlflowLogger

    trainer_spec = context.study.spec.trainer
    batch_size = context.plan.training.batch_size
    datamodule = OperatorDataModule(context.data, batch_size=batch_size, seed=trainer_spec.seed)
    logger = BufferedMlflowLogger(context.run.metrics)
    stage = _Stage(context, datamodule, logger, gradient_clip_val, [*context.callbacks, *extra_callbacks])
    finetune = context.plan.finetune
    first_epochs = finetune.after_epochs if finetune is not None and finetune.after_epochs else trainer_spec.max_epochs
    # Resolved before the first stage trains: a name that matches nothing fails the trial now, not after it.
    trainable = _trainable_parameters(task, finetune) if finetune is not None else None
    trainer = stage.trainer(first_epochs)
    # The loss actually used: a study that leaves it to the task's default records that default, not None.
    n_params = task.n_params
    params = {N_PARAMS: n_params, LOSS_PARAM: getattr(task, "loss_name", context.plan.training.loss)}
    context.run.log(params=params, tags={DEVICE_TAG: _device_name(trainer)})
    with subnormals_flushed(trainer_spec.flush_denormal):
        fit_seconds = stage.fit_and_test(trainer, task)
        epochs = trainer.current_epoch
        if finetune is not None:
            for name, parameter in task.model.named_parameters():
                parameter.requires_grad_(trainable is None or name in trainable)
            task.continue_with(finetune.training, FINETUNE_PREFIX, epochs)
            datamodule.batch_size = finetune.training.batch_size
            logger.step_offset = epochs
            trainer = stage.trainer(finetune.max_epochs)
            fit_seconds += stage.fit_and_test(trainer, task)
            epochs += trainer.current_epoch
    checkpoint = context.workdir / CHECKPOINT_FILE
    trainer.save_checkpoint(checkpoint, weights_only=True)
    platform_metrics: dict[str, Any] = {N_PARAMS: n_params, FIT_SECONDS_METRIC: fit_seconds, EPOCHS_METRIC: epochs}
    context.run.metrics.add(platform_metrics, step=epochs)
    context.run.metrics.flush()
    return TrialResult({**logger.last, **platform_metrics}, checkpoint)


@dataclass(frozen=True)
class _Stage:
    """What every training stage of one trial shares: its data, its logger, its callbacks and clipping."""

    context: TrialContext
    datamodule: OperatorDataModule
    logger: BufferedMlflowLogger
    gradient_clip_val: float | None
    callbacks: list[pl.Callback]

    def trainer(self, max_epochs: int) -> pl.Trainer:
        import pytorch_lightning as pl

        trainer_spec = self.context.study.spec.trainer
        gpu = trial_gpu()  # the runner's placement over this host's GPUs
        return pl.Trainer(
            max_epochs=max_epochs,
            accelerator=trainer_spec.accelerator if gpu is None else "cuda",
            devices=trainer_spec.devices if gpu is None else [gpu],
            precision=trainer_spec.precision,  # type: ignore[arg-type]
            deterministic=trainer_spec.deterministic,
            gradient_clip_val=self.gradient_clip_val,
            logger=self.logger,
            callbacks=self.callbacks,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            # Evaluation under no_grad, not inference mode: a TorchScript graph (geoopt's manifold maths) optimised
            # during an inference-mode pass keeps inference tensors as constants, and the next trial of the process
            # then fails in training ("Inference tensors cannot be saved for backward").
            inference_mode=False,
            default_root_dir=self.context.workdir,
        )

    def fit_and_test(self, trainer: pl.Trainer, task: SweepTask) -> float:
        """Fit and test ``task``; the seconds the fit took."""
        started = time.perf_counter()
        trainer.fit(task, datamodule=self.datamodule)
        fit_seconds = time.perf_counter() - started
        trainer.test(task, datamodule=self.datamodule, verbose=False)
        return fit_seconds


def _trainable_parameters(task: SweepTask, finetune: FinetunePlan) -> set[str] | None:
    """The model's parameters that ``finetune.trainable`` names (a parameter, or a module's); None: all of them."""
    if not finetune.trainable:
        return None
    names = [name for name, _ in task.model.named_parameters()]

    def named(name: str, given: str) -> bool:
        return name == given or name.startswith(given + ".")

    unknown = [given for given in finetune.trainable if not any(named(name, given) for name in names)]
    if unknown:
        modules = sorted({name.split(".")[0] for name in names})
        raise ValueError(
            f"finetune.trainable: {', '.join(unknown)} names no parameter of {type(task.model).__name__} "
            f"(its modules: {', '.join(modules)})"
        )
    return {name for name in names if any(named(name, given) for given in finetune.trainable)}


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
