"""The study spec v1: the typed structure of a study YAML (the checks against the registries are in _study.py)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    field_validator,
    model_validator,
)

from sweeplab._provenance import secret_parts
from sweeplab_modules.stn._settings import OnlineHyperparameter

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"

SAMPLERS = ("tpe", "random", "gp", "cmaes", "qmc", "grid", "nsga2")
PRUNERS = ("none", "median", "hyperband", "successive_halving")
# optuna: each trial trains with sampled values; self_tuning: each trial is one Self-Tuning Network run; transfer:
# optuna's trials at a proxy width, then the best configuration trained at the target widths (muTransfer).
STRATEGIES = ("optuna", "self_tuning", "transfer")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


# An int stays an int (it makes an integer dimension), a float stays a float.
Number = Annotated[int | float, PlainValidator(_number)]


class Range(_Strict):
    """``{low, high}`` with optional ``log: true`` or ``step``; integer when the parameter (or both bounds) is."""

    low: Number
    high: Number
    log: bool = False
    step: Number | None = None


class Choices(_Strict):
    """``{choices: [...]}``: a categorical dimension."""

    choices: list[Any]


def _space_kind(value: Any) -> str:
    if isinstance(value, dict) and "choices" in value:
        return "choices"
    if isinstance(value, dict) and ("low" in value or "high" in value):
        return "range"
    return "constant"


# A value in a search space: a range, a list of choices, or a plain constant.
SpaceValue = Annotated[
    Annotated[Range, Tag("range")] | Annotated[Choices, Tag("choices")] | Annotated[Any, Tag("constant")],
    Discriminator(_space_kind),
]
SPACE_TAGS = frozenset({"range", "choices", "constant"})


class Objective(_Strict):
    metric: str = Field(description="a metric every model in the study logs, e.g. val_rel_l2")
    direction: Literal["minimize", "maximize"] = "minimize"


class DataSpec(_Strict):
    name: str = Field(description="a registered data set")
    params: dict[str, Any] = Field(default_factory=dict, description="the data set's parameters")
    dir: str | None = Field(None, description="data cache folder (default: $SWEEPLAB_DATA_DIR or the user cache)")


# ``package.module:ClassName``, the import path of a class (Hydra's ``_target_`` without the last dot).
IMPORT_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class ModelSpec(_Strict):
    name: str | None = Field(None, description="a registered architecture (or give target)")
    target: str | None = Field(
        None, pattern=IMPORT_PATH, description="your own nn.Module by import path, package.module:ClassName"
    )
    task: str | None = Field(
        None,
        description="the Lightning task: a registered one (operator, classification, contrastive, ...) or your "
        "SweepTask subclass as package.module:ClassName (default: the architecture's, or the data set's)",
    )
    label: str | None = Field(None, description="name of this entry in the study (default: name); unique")
    preset: str | None = Field(None, description="a named configuration of the architecture")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed constructor or training parameters")
    search: dict[str, SpaceValue] = Field(default_factory=dict, description="this architecture's search space")

    @model_validator(mode="after")
    def _name_or_target(self) -> ModelSpec:
        if (self.name is None) == (self.target is None):
            raise ValueError("give either name (a registered architecture) or target (package.module:ClassName)")
        return self

    @property
    def architecture(self) -> str:
        """The registered name, or the import path: what builds the model."""
        return self.name or self.target  # type: ignore[return-value]

    @property
    def key(self) -> str:
        return self.label or self.name or self.architecture.rpartition(":")[2]


class TrainerSpec(_Strict):
    max_epochs: int = Field(10, ge=1)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    precision: Literal["32", "32-true", "64", "64-true", "16-mixed", "bf16-mixed", "bf16-true"] = "32-true"
    seed: int = 0
    deterministic: bool = False
    gradient_clip_val: float | None = Field(None, gt=0)
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads per trial (default: the usable CPUs that other processes leave free when the "
        "trial starts, shared among n_jobs)",
    )
    flush_denormal: bool = Field(
        True,
        description="on the CPU, treat subnormal floats as zero while training: weights that decay towards zero "
        "become subnormal, and their arithmetic made a trained FNO-1D's steps 1.6-2.3x slower (false: IEEE gradual "
        "underflow)",
    )

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class SamplerSpec(_Strict):
    name: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]
    kwargs: dict[str, Any] = Field(default_factory=dict)


class PrunerSpec(_Strict):
    name: Literal[PRUNERS] = "none"  # type: ignore[valid-type]
    kwargs: dict[str, Any] = Field(default_factory=dict)


def _by_name(value: Any) -> Any:
    """``sampler: tpe`` is short for ``sampler: {name: tpe}``."""
    return {"name": value} if isinstance(value, str) else value


class Budget(_Strict):
    n_trials: int | None = Field(None, ge=1, description="trials to finish (default: the grid size for grid)")
    timeout: float | None = Field(None, gt=0, description="seconds; stop starting new trials after it")
    n_jobs: int = Field(1, ge=1, description="trials run at once in this process")


def _no_password(url: str) -> str:
    """Study files are committed: a database password belongs in the environment (PGPASSWORD, ~/.pgpass, or the
    whole URL in SWEEPLAB_STORAGE / SWEEPLAB_TRACKING_URI), never in the YAML."""
    parts = secret_parts(url)
    if parts:
        raise ValueError(
            f"{' and '.join(parts)} would be committed with the study file: drop it from the URL and set PGPASSWORD "
            "(or ~/.pgpass), or pass the whole URL in SWEEPLAB_STORAGE / SWEEPLAB_TRACKING_URI"
        )
    return url


class Tracking(_Strict):
    uri: str = Field(DEFAULT_TRACKING_URI, description="MLflow tracking URI (sqlite, postgresql, http)")
    experiment: str | None = Field(None, description="MLflow experiment (default: the study name)")

    _uri_without_password = field_validator("uri")(_no_password)


class Heartbeat(_Strict):
    """A running trial records a heartbeat; one whose worker went silent (killed, machine lost) for ``grace``
    seconds is failed by the next worker that starts a trial, its MLflow run closed as KILLED, and its
    parameters queued again, up to ``max_retry`` times."""

    interval: int = Field(10, ge=1, description="seconds between a running trial's heartbeats")
    grace: int = Field(60, ge=1, description="seconds of silence after which a trial's worker counts as lost")
    max_retry: int = Field(3, ge=0, description="times one trial's parameters are queued again after a loss")
    outage_limit: int = Field(
        300, ge=1, description="seconds a worker waits for an unreachable database or tracking server, then exits"
    )

    @model_validator(mode="after")
    def _grace_covers_beats(self) -> Heartbeat:
        if self.grace < 2 * self.interval:
            raise ValueError(f"grace ({self.grace} s) must be at least twice the interval ({self.interval} s)")
        return self


class Launcher(_Strict):
    """How ``sweeplab submit`` starts the study's workers: a Slurm job array (submitit), or local processes."""

    workers: int = Field(2, ge=1, description="worker processes: the tasks of one Slurm job array")
    partition: str | None = Field(None, description="Slurm partition (default: the cluster's)")
    time: int = Field(60, ge=1, description="minutes each worker may run (Slurm time limit)")
    cpus_per_worker: int = Field(1, ge=1, description="CPU cores per worker")
    gpus_per_worker: int = Field(0, ge=0, description="GPUs per worker")
    mem_gb: float | None = Field(None, gt=0, description="memory per worker in GB (default: the cluster's)")
    sbatch: dict[str, str | int] = Field(
        default_factory=dict, description="further sbatch options, e.g. {account: lab, qos: short}"
    )
    setup: list[str] = Field(
        default_factory=list, description="shell lines run before each worker, e.g. 'source ~/venv/bin/activate'"
    )
    python: str | None = Field(None, description="the Python the workers run (default: the submitting one)")
    folder: str | None = Field(None, description="job scripts and logs (default: mlruns/slurm/<study>)")
    max_requeues: int = Field(3, ge=0, description="times a worker that reached its time limit is requeued")


class ConfirmSpec(_Strict):
    """After the search, each architecture's best configuration trained again with ``seeds`` fresh seeds (the same
    seeds for every architecture, so the comparison is paired) and evaluated on the test split."""

    seeds: int = Field(
        ge=2, le=100, description="fresh seeds: the study's seed + 1, + 2, ...; at least 2 for an interval"
    )
    metric: str = Field(description="a test metric every model logs, e.g. test_rel_l2")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="how the metric is judged (default: the first objective's direction)"
    )


class FinetuneSpec(_Strict):
    """A second stage of every trial (the Spectral-Refiner's fine-tuning): after the training and its test, the
    same network trains on for ``max_epochs`` with settings of its own, only the parameters ``trainable`` names
    learning. Its metrics are logged as ``finetune/<metric>``; an objective naming one is read after the stage."""

    max_epochs: SpaceValue = Field(description="epochs of the stage: a number, or a space to search")
    after_epochs: SpaceValue | None = Field(
        None, description="the stage boundary: epochs of the first stage, a number or a space (default: trainer's)"
    )
    trainable: list[str] = Field(
        default_factory=list,
        description="the model's parameters that train, by name or module (output_conv); empty: all of them",
    )
    search: dict[str, SpaceValue] = Field(
        default_factory=dict,
        description="the stage's training settings (loss, lr, optimizer, ...), constants or spaces; the others are "
        "the first stage's",
    )


class TransferSpec(_Strict):
    """muTransfer (Tensor Programs V): the search tunes every architecture at the proxy value of ``parameter``;
    afterwards each architecture's best configuration is trained at every target value with the hyperparameters
    found, as child runs of the study (not trials: the sampler and the budget never see them). Meant for models with
    ``parametrization: mup``, under which the best hyperparameters stay best as the width grows."""

    parameter: str = Field("width", description="the model parameter the proxy and the targets differ in")
    proxy: int = Field(ge=1, description="its value in the search's trials")
    targets: list[Annotated[int, Field(ge=1)]] = Field(
        min_length=1, description="its values the best configuration is trained at after the search"
    )


class StudySpec(_Strict):
    """One study: what to compare (models), on what (data), how to search, where to record."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=120)
    description: str = ""
    objective: Objective | list[Objective]
    data: DataSpec
    models: list[ModelSpec] = Field(min_length=1)
    search: dict[str, SpaceValue] = Field(default_factory=dict, description="shared training search space")
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    sampler: Annotated[SamplerSpec, Field(default_factory=SamplerSpec)]
    pruner: Annotated[PrunerSpec, Field(default_factory=PrunerSpec)]
    strategy: Literal[STRATEGIES] = "optuna"  # type: ignore[valid-type]
    hyperparameters: dict[str, OnlineHyperparameter] = Field(
        default_factory=dict, description="regularisation hyperparameters: sampled per trial, or tuned online"
    )
    self_tuning: dict[str, SpaceValue] = Field(
        default_factory=dict, description="SelfTuningSettings fields: constants or spaces the outer study searches"
    )
    budget: Budget = Field(default_factory=Budget)
    tracking: Tracking = Field(default_factory=Tracking)
    storage: str = Field(DEFAULT_STORAGE, description="Optuna storage URL")
    heartbeat: Heartbeat = Field(default_factory=Heartbeat)
    launcher: Launcher = Field(default_factory=Launcher)
    confirm: ConfirmSpec | None = Field(None, description="retrain each architecture's best with fresh seeds")
    finetune: FinetuneSpec | None = Field(None, description="a second training stage of every trial")
    transfer: TransferSpec | None = Field(None, description="strategy transfer: the proxy and target widths")

    _storage_without_password = field_validator("storage")(_no_password)

    _sampler_by_name = field_validator("sampler", "pruner", mode="before")(_by_name)

    @property
    def objectives(self) -> list[Objective]:
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name


# Every model of the spec, for suggestions when a key is unknown.
SPEC_MODELS = (
    StudySpec,
    Objective,
    DataSpec,
    ModelSpec,
    TrainerSpec,
    SamplerSpec,
    PrunerSpec,
    Budget,
    Tracking,
    Launcher,
    OnlineHyperparameter,
    ConfirmSpec,
    FinetuneSpec,
    TransferSpec,
)
