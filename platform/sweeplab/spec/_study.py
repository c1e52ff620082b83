"""The resolved study: what the engine samples and trains, every name checked against the registries (the checker,
``_checker.py``, builds it)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeplab.data._registry import DatasetEntry
from sweeplab.record import FINETUNE_PREFIX, FIT_SECONDS_METRIC, N_PARAMS
from sweeplab.spec._schema import StudySpec
from sweeplab.spec._space import MODEL_PARAM, Dimension
from sweeplab_modules.registry import ModelEntry, TaskEntry, task_entry
from sweeplab_modules.training import TrainingConfig

if TYPE_CHECKING:
    import optuna

# Metrics the engine logs for every trial, whatever the task.
PLATFORM_METRICS = (N_PARAMS, FIT_SECONDS_METRIC)

TRAINING_FIELDS = TrainingConfig.model_fields


@dataclass(frozen=True)
class ModelPlan:
    """One architecture of the study: its fixed arguments and its own (conditional) dimensions."""

    key: str
    entry: ModelEntry
    fixed: dict[str, Any]
    dimensions: tuple[Dimension, ...]


# The stage's epoch counts, beside the training settings it overrides.
_STAGE_EPOCHS = ("max_epochs", "after_epochs")


@dataclass(frozen=True)
class FinetuneStage:
    """The second stage as the study declares it (``finetune:``): its constants (``max_epochs`` and
    ``after_epochs`` among the training settings) and its searched dimensions (Optuna parameters
    ``finetune.<name>``)."""

    trainable: tuple[str, ...]
    fixed: dict[str, Any]
    dimensions: tuple[Dimension, ...]

    def sample(self, trial: optuna.Trial, training: TrainingConfig) -> FinetunePlan:
        settings = self.fixed | {d.target: d.suggest(trial) for d in self.dimensions}
        overrides = {k: v for k, v in settings.items() if k not in _STAGE_EPOCHS}
        return FinetunePlan(
            settings["max_epochs"],
            training.model_copy(update=overrides),
            self.trainable,
            settings,
            settings.get("after_epochs"),
        )


@dataclass(frozen=True)
class FinetunePlan:
    """One trial's second stage: ``max_epochs`` more with ``training`` (the first stage's settings with the stage's
    own), only the parameters ``trainable`` names (all when empty) learning."""

    max_epochs: int
    training: TrainingConfig
    trainable: tuple[str, ...]
    settings: dict[str, Any]
    """The values the stage sets (``max_epochs`` included), for tracking."""
    after_epochs: int | None = None
    """The first stage's epochs (the stage boundary); None: the trainer's ``max_epochs``."""


@dataclass(frozen=True)
class TrialPlan:
    """What one trial trains: the architecture, its constructor arguments and the training configuration."""

    model_key: str
    model_name: str
    model_params: dict[str, Any]
    training: TrainingConfig
    hyperparameters: dict[str, float] = field(default_factory=dict)
    """Sampled values of the study's regularisation hyperparameters (strategy optuna)."""
    self_tuning: dict[str, Any] = field(default_factory=dict)
    """The hyper-training settings of a self_tuning trial (SelfTuningSettings fields)."""
    finetune: FinetunePlan | None = None
    """The trial's second stage, when the study fine-tunes."""

    def flat_params(self) -> dict[str, Any]:
        """Every value that defines the trial, for tracking (constructor arguments prefixed ``model.``)."""
        values: dict[str, Any] = {"model": self.model_key, "architecture": self.model_name}
        values.update({f"model.{k}": v for k, v in sorted(self.model_params.items())})
        # A loss left to the task's default is logged by the training as the loss it used (``fit_task``).
        values.update({k: v for k, v in self.training.model_dump().items() if not (k == "loss" and v is None)})
        values.update({f"hp.{k}": v for k, v in self.hyperparameters.items()})
        values.update({f"stn.{k}": v for k, v in self.self_tuning.items()})
        if self.finetune is not None:
            stage = FINETUNE_PREFIX.rstrip("/")
            values.update({f"{stage}.{k}": v for k, v in self.finetune.settings.items()})
            values[f"{stage}.trainable"] = ",".join(self.finetune.trainable) or "all"
        return values


@dataclass(frozen=True)
class Study:
    spec: StudySpec
    source: str
    text: str
    task: TaskEntry
    dataset: DatasetEntry
    data_params: dict[str, Any]
    data_channels: tuple[int, int]
    models: tuple[ModelPlan, ...]
    shared_fixed: dict[str, Any]
    shared_dimensions: tuple[Dimension, ...]
    _by_key: dict[str, ModelPlan] = field(init=False, repr=False)
    hyperparameter_dimensions: tuple[Dimension, ...] = ()
    """The regularisation hyperparameters as sampled dimensions (``hp.<name>``; strategy optuna)."""
    self_tuning_fixed: dict[str, Any] = field(default_factory=dict)
    self_tuning_dimensions: tuple[Dimension, ...] = ()
    finetune: FinetuneStage | None = None
    """The second training stage of every trial (``finetune:``), or None."""
    notes: tuple[str, ...] = ()
    """How the checker learnt what it checked where it had to import user code (``sweeplab validate --verbose``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {plan.key: plan for plan in self.models})

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def metrics(self) -> list[str]:
        return [objective.metric for objective in self.spec.objectives]

    @property
    def directions(self) -> list[str]:
        return [objective.direction for objective in self.spec.objectives]

    @property
    def logged_metrics(self) -> tuple[str, ...]:
        """Every metric each trial logs, ``test_rel_l2_<size>`` at each of the data's test resolutions included."""
        test_resolutions = tuple(self.data_params.get("test_resolutions", ()))
        return metrics_of(self.models[0].entry, test_resolutions, finetune=self.finetune is not None)

    @property
    def confirm_seeds(self) -> list[int]:
        """The confirmation stage's seeds, the same for every architecture: fresh ones, after the search's seed."""
        confirm = self.spec.confirm
        return [] if confirm is None else [self.spec.trainer.seed + i for i in range(1, confirm.seeds + 1)]

    @property
    def confirm_direction(self) -> str:
        confirm = self.spec.confirm
        return (confirm.direction if confirm is not None else None) or self.directions[0]

    def with_seed(self, seed: int) -> Study:
        """The same study trained from ``seed`` (initial weights and batch order)."""
        trainer = self.spec.trainer.model_copy(update={"seed": seed})
        return dataclasses.replace(self, spec=self.spec.model_copy(update={"trainer": trainer}))

    def resolved_yaml(self) -> str:
        """The study with every default filled in (data parameters included): what actually ran."""
        import yaml

        resolved = self.spec.model_dump(mode="json")
        resolved["data"]["params"] = self.data_params
        return yaml.safe_dump(resolved, sort_keys=False)

    def sample(self, trial: optuna.Trial) -> TrialPlan:
        """Draw one trial's configuration: the architecture first, then the dimensions that apply to it."""
        plan = self._by_key[trial.suggest_categorical(MODEL_PARAM, [p.key for p in self.models])]
        values = dict(self.shared_fixed)
        own_targets = {d.target for d in plan.dimensions} | set(plan.fixed)
        for dimension in self.shared_dimensions:
            if dimension.target not in own_targets:
                values[dimension.target] = dimension.suggest(trial)
        values.update(plan.fixed)
        values.update({d.target: d.suggest(trial) for d in plan.dimensions})
        training = {k: v for k, v in values.items() if k in TRAINING_FIELDS}
        model_params = {k: v for k, v in values.items() if k not in TRAINING_FIELDS}
        hyperparameters = {d.target: d.suggest(trial) for d in self.hyperparameter_dimensions}
        settings = self.self_tuning_fixed | {d.target: d.suggest(trial) for d in self.self_tuning_dimensions}
        config = TrainingConfig(**training)
        finetune = self.finetune.sample(trial, config) if self.finetune is not None else None
        return TrialPlan(plan.key, plan.entry.name, model_params, config, hyperparameters, settings, finetune)

    def grid_size(self) -> int:
        """How many points a grid study has: per architecture, the product of its dimensions' sizes."""
        total = 0
        for plan in self.models:
            own_targets = {d.target for d in plan.dimensions} | set(plan.fixed)
            dimensions = [d for d in self.shared_dimensions if d.target not in own_targets] + list(plan.dimensions)
            total += math.prod(d.grid_size() for d in dimensions)
        stage = self.finetune.dimensions if self.finetune is not None else ()
        return total * math.prod(d.grid_size() for d in stage)


def metrics_of(entry: ModelEntry, test_resolutions: tuple[int, ...] = (), finetune: bool = False) -> tuple[str, ...]:
    """Every metric a trial of ``entry`` logs: its task's, per test resolution, again with the fine-tuning stage's
    prefix when the study fine-tunes, and the platform's."""
    task = task_entry(entry.task)
    per_resolution = tuple(f"{metric}_{size}" for metric in task.resolution_metrics for size in test_resolutions)
    staged = tuple(FINETUNE_PREFIX + metric for metric in task.metrics + per_resolution) if finetune else ()
    return task.metrics + per_resolution + staged + PLATFORM_METRICS
