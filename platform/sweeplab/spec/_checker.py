"""Load a study file, check it against the registries, and resolve it into the ``Study`` the engine samples."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import itertools
import typing
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from sweeplab._provenance import redacted
from sweeplab.data._registry import DATASETS, DatasetEntry
from sweeplab.record import FINETUNE_PREFIX
from sweeplab.spec._errors import Location, SpecIssue, StudyError
from sweeplab.spec._schema import SPACE_TAGS, SPEC_MODELS, Choices, Range, StudySpec
from sweeplab.spec._space import Dimension
from sweeplab.spec._study import TRAINING_FIELDS, FinetuneStage, ModelPlan, Study, metrics_of
from sweeplab.spec._yaml import YamlError, load_with_lines
from sweeplab_modules.parametrization import MUP_OPTIMIZERS, parametrization_problem
from sweeplab_modules.registry import (
    INJECTED_PARAMETERS,
    MODELS,
    Constructor,
    ModelEntry,
    Parameter,
    TaskEntry,
    constructor_parameters,
    fixed_arguments,
    import_target,
    is_target,
    model_attributes,
    model_constructor,
    task_entry,
)
from sweeplab_modules.stn._settings import SelfTuningSettings

if TYPE_CHECKING:
    pass

_FIELDS_OF = {"training": TRAINING_FIELDS, "self_tuning": SelfTuningSettings.model_fields}
_URI_SCHEMES = {
    "storage": ("sqlite", "postgresql", "mysql", "journal"),
    "tracking.uri": ("sqlite", "postgresql", "mysql", "http", "https"),
}
# The module SQLAlchemy loads for each database URL (``postgresql://`` means psycopg2): found, not imported, so
# a store whose driver is missing is an error here rather than a traceback after the data were generated.
_DRIVERS = {
    "postgresql": "psycopg2",
    "postgresql+psycopg2": "psycopg2",
    "postgresql+psycopg": "psycopg",
    "mysql": "MySQLdb",
    "mysql+mysqldb": "MySQLdb",
    "mysql+pymysql": "pymysql",
}


def url_problem(key: str, url: str) -> str | None:
    """Why ``url`` cannot be the study's ``key`` (``storage`` or ``tracking.uri``), or None: the one check for the
    study's keys and for the command line's ``--storage`` and ``--tracking-uri``."""
    schemes = _URI_SCHEMES[key]
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.split("+", 1)[0] not in schemes:
        return f"{redacted(url)!r} is not a supported URL (schemes: {', '.join(schemes)})"
    if scheme == "journal" and (not url.startswith("journal:///") or url.rstrip("/") == "journal:"):
        return "a journal file is journal:///relative/path.log or journal:////absolute/path.log"
    driver = _DRIVERS.get(scheme)
    if driver is not None and importlib.util.find_spec(driver) is None:
        installed = [name for name, module in _DRIVERS.items() if importlib.util.find_spec(module) is not None]
        usable = [name for name in installed if name.split("+")[0] == scheme.split("+")[0]]
        hint = f": write {usable[0]}://..." if usable else ""
        return f"{scheme}:// needs the {driver} driver, which is not installed{hint}"
    return None


def load_study(path: str | Path | Mapping[str, Any]) -> Study:
    """Read and check a study file, or a dict with the same keys (a notebook's); raise StudyError naming file,
    line and field of every problem (a dict's lines are those of its YAML form, ``study.text``)."""
    if isinstance(path, Mapping):
        import yaml

        return parse_study(yaml.safe_dump(dict(path), sort_keys=False), "<dict>")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StudyError(str(path), [SpecIssue((), f"cannot read the study: {error.strerror or error}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        message = f"not UTF-8 text: byte {data[error.start]:#04x} at column {error.start - line_start + 1}"
        line = data.count(b"\n", 0, error.start) + 1
        raise StudyError(str(path), [SpecIssue((), message, line)]) from None
    return parse_study(text, str(path))


def parse_study(text: str, source: str = "<study>") -> Study:
    try:
        raw, lines = load_with_lines(text)
    except YamlError as error:
        raise StudyError(source, [SpecIssue(error.location, error.message, error.line)]) from None
    if not isinstance(raw, dict):
        what = "empty" if raw is None else f"a {type(raw).__name__}"
        raise StudyError(source, [SpecIssue((), f"a study is a mapping of keys (name, objective, ...), got {what}", 1)])
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as error:
        issues = _pydantic_issues(error.errors(), raw) + _issues_elsewhere(error, raw, source, text)
        raise StudyError(source, sorted((_with_line(i, lines) for i in issues), key=lambda i: i.line or 0)) from None
    checker = _Checker(spec)
    study = checker.resolve(source, text)
    if checker.issues:
        raise StudyError(source, [_with_line(i, lines) for i in checker.issues])
    assert study is not None
    return study


def _issues_elsewhere(error: ValidationError, raw: dict[str, Any], source: str, text: str) -> list[SpecIssue]:
    """What the checker finds in the sections that passed the schema, so that one run of ``validate`` reports
    every independent problem: the study without its failed sections (their defaults instead), when that is a
    study; nothing when a failed section is one the others depend on (a required one)."""
    failed = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
    try:
        spec = StudySpec.model_validate({key: value for key, value in raw.items() if key not in failed})
    except ValidationError:
        return []
    checker = _Checker(spec)
    checker.resolve(source, text)
    return [issue for issue in checker.issues if not issue.location or str(issue.location[0]) not in failed]


def _with_line(issue: SpecIssue, lines: Mapping[Location, int]) -> SpecIssue:
    location = issue.location
    while location not in lines and location:
        location = location[:-1]
    return SpecIssue(issue.location, issue.message, lines.get(location))


_ALL_SPEC_KEYS = sorted({name for model in SPEC_MODELS for name in model.model_fields})


def _pydantic_issues(
    errors: list[Any], raw: Any, prefix: Location = (), known: list[str] | None = None
) -> list[SpecIssue]:
    """Pydantic's errors as issues at the places the user wrote. Pydantic adds the names of union members
    (``Objective``, ``list[Objective]``, ``int``) to its locations: only parts present in ``raw`` are kept, and the
    members' messages for one place are merged ("must be a valid integer or must be 'auto'")."""
    merged: dict[Location, list[str]] = {}
    for error in errors:
        location = prefix + _written_part(error["loc"], raw)
        message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(location[-1]), known or _ALL_SPEC_KEYS, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif error["type"] == "missing":
            message = "required"
        merged.setdefault(location, [])
        if message not in merged[location]:
            merged[location].append(message)
    # A member that failed on the container's type ("must be a valid list") is noise when another member got
    # further into the value: keep the deeper errors.
    deepest = {loc for loc in merged if not any(other[: len(loc)] == loc and other != loc for other in merged)}
    return [SpecIssue(loc, " or ".join(messages)) for loc, messages in merged.items() if loc in deepest]


def _written_part(location: tuple[Any, ...], raw: Any) -> Location:
    """``location`` without the parts pydantic adds for unions (tags and member names like ``Objective``,
    ``list[Objective]``, ``int``, ``literal['auto']``), which the user never wrote."""
    kept: list[str | int] = []
    node = raw
    for part in location:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if present:
            node = node[part]
        elif part in SPACE_TAGS or str(part).startswith(("function-", "constrained-")) or _is_union_member_label(part):
            continue
        else:  # a key not written (missing or unknown): keep it, nothing below it was written either
            node = None
        kept.append(part)
    return tuple(kept)


def _is_union_member_label(part: Any) -> bool:
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("int", "float", "str", "bool"))


class _Checker:
    """The checks that need the registries; collects every issue rather than stopping at the first."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self.issues: list[SpecIssue] = []
        self.notes: list[str] = []
        self.source = "<study>"
        self.test_resolutions: tuple[int, ...] = ()
        self.grids: tuple[tuple[str, int], ...] = ()
        """``(data parameter, points per side)`` of every grid a model sees: training and test resolutions."""
        self.data_dims = 0
        self.physics = False
        """Whether the data set states its equation's coefficients (physics losses need them)."""
        self.out_channels = 0
        """The model's output channels: for a time series, the snapshots one call predicts."""

    def fail(self, location: Location, message: str) -> None:
        self.issues.append(SpecIssue(location, message))

    def resolve(self, source: str, text: str) -> Study | None:
        spec = self.spec
        self.source = source
        dataset, data_params, data_channels = self._check_data()
        models = [plan for index, m in enumerate(spec.models) if (plan := self._check_model(index, m, dataset))]
        tasks = {plan.entry.task for plan in models}
        if len(tasks) > 1:
            self.fail(("models",), f"all models must serve one task, got {sorted(tasks)}")
        task = task_entry(tasks.pop()) if len(tasks) == 1 else None
        shared_fixed, shared_dims = self._check_space(("search",), dict(spec.search), _training_parameters(), "")
        self._check_objectives(models)
        self._check_confirm(models)
        finetune = self._check_finetune(task, models)
        self._check_parametrizations(models, shared_fixed, shared_dims, finetune)
        self._check_transfer()
        self._check_strategy(models, shared_dims)
        hyperparameter_dims, stn_fixed, stn_dims = self._check_self_tuning()
        self._check_uris()
        if task:
            self._check_loss(("search",), task, shared_fixed, shared_dims)
        if self.issues or task is None or dataset is None:
            return None
        study = Study(
            spec,
            source,
            text,
            task,
            dataset,
            data_params,
            data_channels,
            tuple(models),
            shared_fixed,
            tuple(shared_dims),
            hyperparameter_dimensions=tuple(hyperparameter_dims),
            self_tuning_fixed=stn_fixed,
            self_tuning_dimensions=tuple(stn_dims),
            finetune=finetune,
            notes=tuple(self.notes),
        )
        self._check_budget(study)
        return study

    def _check_data(self) -> tuple[DatasetEntry | None, dict[str, Any], tuple[int, int]]:
        data = self.spec.data
        if data.dir is not None:
            self._check_data_dir(Path(data.dir).expanduser())
        if data.name in DATASETS.problems:
            self.fail(("data", "name"), DATASETS.problems[data.name])
            return None, {}, (0, 0)
        if data.name not in DATASETS:
            self.fail(("data", "name"), _unknown("data set", data.name, DATASETS))
            return None, {}, (0, 0)
        entry = DATASETS[data.name]
        self.data_dims = entry.spatial_dims
        model: type[BaseModel] = entry.params_model()
        try:
            # Paths in the parameters (the files data set) are the study file's folder's.
            base = Path(self.source).parent if Path(self.source).is_file() else Path.cwd()
            params = model.model_validate(data.params, context={"base": base})
        except ValidationError as error:
            self.issues += _pydantic_issues(error.errors(), data.params, ("data", "params"), list(model.model_fields))
            return entry, {}, (0, 0)
        if entry.check is not None:
            problems = import_target(entry.check)(params)
            for field, message in problems:
                self.fail(("data", "params", *field), message)
            if problems:
                return entry, {}, (0, 0)
        self.test_resolutions = tuple(getattr(params, "test_resolutions", ()))
        self.physics = getattr(params, "physics", None) is not None
        resolution = getattr(params, "resolution", None)
        self.grids = (("resolution", resolution),) if resolution else ()
        self.grids += tuple(("test_resolutions", size) for size in self.test_resolutions)
        self.data_dims = entry.dims(params)
        channels = entry.model_channels(params)
        self.out_channels = channels[1]
        return entry, params.model_dump(mode="json"), channels

    def _check_data_dir(self, folder: Path) -> None:
        """The cache folder, or the nearest part of its path that exists, must be a folder (it is created)."""
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            self.fail(("data", "dir"), f"{str(existing)!r} is a file, not a folder")

    def _check_model(self, index: int, model: Any, dataset: DatasetEntry | None) -> ModelPlan | None:
        where: Location = ("models", index)
        before = len(self.issues)
        found = self._architecture(where, model, dataset)
        if found is None:
            return None
        entry, constructor = found
        if model.key in [m.key for m in self.spec.models[:index]]:
            self.fail(where + ("label" if model.label else "name",), f"{model.key!r} appears twice: give each a label")
        kind = task_entry(entry.task).kind
        served = is_target(kind) or dataset is None or dataset.serves(kind)  # a bare SweepTask: any data
        if dataset is not None and (not served or entry.spatial_dims != self.data_dims):
            self.fail(
                where + ("name" if model.name else "task",),
                f"{model.key} is a {entry.spatial_dims}D {kind} model, but data set {dataset.name!r} is "
                f"{self.data_dims}D {dataset.task} data",
            )
        parameters = {**constructor.parameters, **_training_parameters()}
        if constructor.open:  # **kwargs: any other key is passed on, unchecked
            parameters.update(
                {name: Parameter(name, None, None) for name in {*model.params, *model.search} - set(parameters)}
            )
        for name in INJECTED_PARAMETERS:
            parameters.pop(name, None)
        fixed: dict[str, Any] = {}
        if model.preset is not None:
            if model.preset not in entry.presets:
                self.fail(where + ("preset",), _unknown(f"preset of {model.key}", model.preset, entry.presets))
            else:
                fixed.update(
                    self._check_space(where + ("preset",), dict(entry.presets[model.preset]), parameters, "")[0]
                )
        for name, value in model.params.items():
            if isinstance(value, dict) and {"low", "high", "choices"} & set(value):
                self.fail(where + ("params", name), "a search space belongs under 'search', params are fixed")
        # e.g. spatial_dims of fno2d: part of the registered name
        variant_fixed = fixed_arguments(entry.target) if model.name else {}
        own_params, own_search = (
            {name: value for name, value in space.items() if name not in variant_fixed}
            for space in (model.params, model.search)
        )
        for section, space in (("params", model.params), ("search", model.search)):
            for name in variant_fixed.keys() & space.keys():
                self.fail(where + (section, name), f"{model.name} fixes {name} to {variant_fixed[name]!r}")
        params_fixed, _ = self._check_space(where + ("params",), own_params, parameters, "")
        fixed.update(params_fixed)
        searched_fixed, dimensions = self._check_space(where + ("search",), own_search, parameters, f"{model.key}.")
        fixed.update(searched_fixed)
        given = set(fixed) | {d.target for d in dimensions}
        for name, parameter in parameters.items():
            if parameter.required and name not in given:
                self.fail(where + ("params",), f"{model.key} needs a value for {name!r}")
        self._check_loss(
            where + ("params" if "loss" in model.params else "search",), task_entry(entry.task), fixed, dimensions
        )
        transferred = self._transfer_proxy(where, model, parameters, fixed)
        if entry.grid_check and dataset is not None and len(self.issues) == before:
            self._check_grids(where, model, entry, fixed, dimensions, transferred, ("transfer", "proxy"))
            if transferred is not None and len(self.issues) == before:  # the targets train on the same grids
                assert self.spec.transfer is not None
                for target_index, target in enumerate(self.spec.transfer.targets):
                    at = ("transfer", "targets", target_index)
                    self._check_grids(where, model, entry, fixed | {transferred: target}, dimensions, transferred, at)
        return ModelPlan(model.key, entry, fixed, tuple(dimensions))

    def _check_grids(
        self,
        where: Location,
        model: Any,
        entry: Any,
        fixed: dict[str, Any],
        dimensions: list[Dimension],
        transferred: str | None = None,
        transferred_at: Location = (),
    ) -> None:
        """What the architecture needs of the data's grids (``ModelEntry.grid_check``), at the fixed values and at
        every corner of its search space (each range's ends, each choice): a trial that could only fail is an
        error now. The first problem per parameter is reported, where the value was written (``transferred_at``
        for the parameter strategy transfer sets)."""
        check = import_target(entry.grid_check)
        defaults = {
            name: parameter.default
            for name, parameter in constructor_parameters(entry.target).items()
            if not parameter.required
        }
        corners = [d.choices if d.choices is not None else (d.low, d.high) for d in dimensions]
        reported: set[str] = set()
        for values in itertools.islice(itertools.product(*corners), _MAX_GRID_CHECKS):
            params = defaults | fixed | {d.target: v for d, v in zip(dimensions, values, strict=True)}
            for key, size in self.grids:
                problem = check(params, (size,) * entry.spatial_dims)
                if problem is None or problem[0] in reported:
                    continue
                name, message = problem
                reported.add(name)
                if name == transferred:
                    at, origin = transferred_at, f"{name} {params[name]!r}: "
                else:
                    at = _written_at(where, model, name)
                    origin = {"preset": f"{name} {params[name]!r} of preset {model.preset!r}: ", name: ""}.get(
                        at[-1], f"{name} defaults to {params[name]!r}: "
                    )
                self.fail(at, f"{origin}{message} (data.params.{key}: {size})")

    def _architecture(
        self, where: Location, model: Any, dataset: DatasetEntry | None
    ) -> tuple[ModelEntry, Constructor] | None:
        """The registry entry of a registered model, or one made for a class given by import path (in the data
        set's task and dimensions), with the constructor to check the parameters against; None after an issue."""
        if model.name is not None:
            if model.name in MODELS.problems:
                self.fail(where + ("name",), MODELS.problems[model.name])
                return None
            if model.name not in MODELS:
                self.fail(where + ("name",), _unknown("model", model.name, MODELS))
                return None
            entry = MODELS[model.name]
            constructor = Constructor(constructor_parameters(entry.target))
        else:
            try:
                constructor = model_constructor(model.target)
            except (LookupError, TypeError) as error:
                self.fail(where + ("target",), str(error))
                return None
            how = constructor.imported or "read from its source, not imported"
            self.notes.append(f"models[{where[1]}] {model.target}: parameters {how}")
            lacking = sorted(INJECTED_PARAMETERS - set(constructor.parameters))
            if lacking and not constructor.open:
                self.fail(
                    where + ("target",),
                    f"{model.target} must take in_channels and out_channels (the data's channels are passed to "
                    f"it); its constructor lacks {' and '.join(lacking)}",
                )
                return None
            entry = ModelEntry(
                name=model.target,
                target=model.target,
                task=dataset.task if dataset is not None else "operator",
                spatial_dims=self.data_dims,
                description="",
            )
        if model.task is not None:
            try:
                task = task_entry(model.task)
            except (KeyError, LookupError, TypeError) as error:
                self.fail(where + ("task",), str(error.args[0]) if isinstance(error, KeyError) else str(error))
                return None
            if task.target == model.task:
                self.notes.append(f"models[{where[1]}] task {model.task}: imported to check it is a SweepTask")
            entry = dataclasses.replace(entry, task=model.task if task.target == model.task else task.name)
        return entry, constructor

    def _check_loss(self, where: Location, task: TaskEntry, fixed: dict[str, Any], dims: list[Dimension]) -> None:
        searched = [d.choices or () for d in dims if d.target == "loss"]
        for value in ([fixed["loss"]] if "loss" in fixed else []) + [c for choices in searched for c in choices]:
            if value not in task.losses:
                self.fail(
                    where + ("loss",), f"must be one of {list(task.losses)} for the {task.name} task, got {value!r}"
                )
            elif value in task.physics_losses and not self.physics:
                self.fail(
                    where + ("loss",),
                    f"{value} is a residual of the data's equation: data set {self.spec.data.name!r} states none "
                    "(navier_stokes does)",
                )
            elif value in task.physics_losses and self.out_channels < 2:
                # The residual's time derivative is a difference of the snapshots of one model call.
                self.fail(
                    where + ("loss",),
                    f"{value} needs at least 2 snapshots per model call, the data give {self.out_channels} "
                    "(in autoregressive mode, set data.params.step >= 2 or use mode: all_at_once)",
                )

    def _check_finetune(self, task: TaskEntry | None, models: list[ModelPlan]) -> FinetuneStage | None:
        """The second stage: its epochs and settings (constants or spaces, Optuna parameters ``finetune.<name>``),
        and what it cannot be combined with."""
        finetune = self.spec.finetune
        if finetune is None:
            return None
        epochs = {name: Parameter(name, "int", minimum=1) for name in ("max_epochs", "after_epochs")}
        declared = {"max_epochs": finetune.max_epochs, "after_epochs": finetune.after_epochs}
        space = {name: value for name, value in declared.items() if value is not None}
        fixed, dimensions = self._check_space(("finetune",), space, epochs, "finetune.")
        search = dict(finetune.search)
        settings, searched = self._check_space(("finetune", "search"), search, _training_parameters(), "finetune.")
        if task is not None:
            self._check_loss(("finetune", "search"), task, settings, searched)
        for index, name in enumerate(finetune.trainable):
            self._check_trainable(("finetune", "trainable", index), name, models)
        if self.spec.sampler.name == "grid":
            for d in [d for d in dimensions + searched if not d.discrete]:
                at = ("finetune", d.target) if d.target in epochs else ("finetune", "search", d.target)
                self.fail(at, "a grid needs discrete values: give choices or a step")
        if self.spec.hyperparameters:
            self.fail(("finetune",), "a study with regularisation hyperparameters trains in one stage")
        return FinetuneStage(tuple(finetune.trainable), fixed | settings, tuple(dimensions + searched))

    def _check_trainable(self, at: Location, name: str, models: list[ModelPlan]) -> None:
        """``name`` is a parameter or module of every model: its first part an attribute the model's class assigns
        (read from source; a class that cannot be read is checked when the stage starts)."""
        parts = name.split(".")  # the parts after the first may be indices (``spectral.0``)
        if not parts[0].isidentifier() or not all(part.isidentifier() or part.isdigit() for part in parts):
            self.fail(at, f"{name!r} is not a parameter or module name")
            return
        for plan in models:
            try:
                attributes = model_attributes(plan.entry.target)
            except LookupError:
                continue
            if parts[0] not in attributes:
                close = difflib.get_close_matches(parts[0], sorted(attributes), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(at, f"{plan.key} has no module or parameter {name!r}{hint}")

    def _check_space(
        self, where: Location, space: dict[str, Any], parameters: Mapping[str, Parameter], prefix: str
    ) -> tuple[dict[str, Any], list[Dimension]]:
        fixed: dict[str, Any] = {}
        dimensions: list[Dimension] = []
        for name, value in space.items():
            at = where + (name,)
            if name not in parameters:
                close = difflib.get_close_matches(name, list(parameters), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(parameters))})"
                self.fail(at, "unknown parameter" + hint)
                continue
            adapter = _adapter(parameters[name])
            if isinstance(value, Choices):
                dimension = self._check_choices(at, prefix + name, name, value, adapter)
            elif isinstance(value, Range):
                dimension = self._check_range(at, prefix + name, name, value, adapter)
            else:
                if self._check_value(at, value, adapter):
                    fixed[name] = _normalised(value, adapter)
                continue
            if dimension is not None:
                dimensions.append(dimension)
        return fixed, dimensions

    def _check_value(self, at: Location, value: Any, adapter: TypeAdapter[Any] | None) -> bool:
        if adapter is None:
            return True
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            self.fail(at, _first_message(error))
            return False
        return True

    def _check_choices(
        self, at: Location, name: str, target: str, space: Choices, adapter: TypeAdapter[Any] | None
    ) -> Dimension | None:
        if not space.choices:
            self.fail(at + ("choices",), "must list at least one choice")
            return None
        valid = all(self._check_value(at + ("choices", i), c, adapter) for i, c in enumerate(space.choices))
        repeated = {repr(c) for c in space.choices if space.choices.count(c) > 1}
        if repeated:
            self.fail(at + ("choices",), f"repeats {', '.join(sorted(repeated))}")
        if not valid or repeated:
            return None
        return Dimension(name, target, choices=tuple(_normalised(c, adapter) for c in space.choices))

    def _check_range(
        self, at: Location, name: str, target: str, space: Range, adapter: TypeAdapter[Any] | None
    ) -> Dimension | None:
        integer = _takes_only_integers(adapter, space)
        before = len(self.issues)
        numbers = {"low": space.low, "high": space.high} | ({"step": space.step} if space.step is not None else {})
        if integer:
            for key, number in numbers.items():
                if number != int(number):
                    self.fail(at + (key,), f"must be an integer: {target} takes integers")
        if space.low > space.high:
            self.fail(at + ("low",), f"must be <= high ({space.low} > {space.high})")
        if space.log and space.low <= 0:
            self.fail(at + ("low",), "must be > 0 for a log scale")
        if space.log and space.step is not None:
            self.fail(at + ("step",), "cannot be combined with log: true")
        if space.step is not None and space.step <= 0:
            self.fail(at + ("step",), "must be > 0")
        elif space.step is not None and space.low <= space.high and (problem := _steps_off_range(space)):
            self.fail(at + ("high",), problem)
        for key in ("low", "high"):
            if not any(issue.location == at + (key,) for issue in self.issues[before:]):
                self._check_value(at + (key,), numbers[key], adapter)
        if len(self.issues) > before:
            return None
        cast = int if integer else float
        step = cast(space.step) if space.step is not None else None
        return Dimension(name, target, cast(space.low), cast(space.high), space.log, step, integer=integer)

    def _check_objectives(self, models: list[ModelPlan]) -> None:
        for index, objective in enumerate(self.spec.objectives):
            at: Location = (
                ("objective", index, "metric") if isinstance(self.spec.objective, list) else ("objective", "metric")
            )
            if objective.metric.removeprefix(FINETUNE_PREFIX).startswith("test_"):
                self.fail(at, f"{objective.metric!r} is measured on the test split: tuning on it leaks the test set")
                continue
            finetune = self.spec.finetune is not None
            if finetune and objective.metric in _task_metrics(models):
                self.fail(
                    at,
                    f"the trials fine-tune: the objective is read after the last stage, {FINETUNE_PREFIX}"
                    f"{objective.metric} (not {objective.metric!r}, the first stage's)",
                )
                continue
            logged = [set(metrics_of(p.entry, self.test_resolutions, finetune)) for p in models]
            missing = [p.key for p, metrics in zip(models, logged, strict=True) if objective.metric not in metrics]
            if missing:
                common = set.intersection(*logged)
                available = ", ".join(
                    sorted(m for m in common if not m.removeprefix(FINETUNE_PREFIX).startswith("test_"))
                )
                self.fail(at, f"{objective.metric!r} is not logged by {', '.join(missing)} (available: {available})")

    def _check_confirm(self, models: list[ModelPlan]) -> None:
        """The confirmation stage compares a test metric that every architecture logs."""
        confirm = self.spec.confirm
        if confirm is None:
            return
        if not confirm.metric.removeprefix(FINETUNE_PREFIX).startswith("test_"):
            self.fail(
                ("confirm", "metric"), f"{confirm.metric!r}: the confirmation evaluates on the test split (test_...)"
            )
            return
        finetune = self.spec.finetune is not None
        logged = [set(metrics_of(p.entry, self.test_resolutions, finetune)) for p in models]
        missing = [p.key for p, metrics in zip(models, logged, strict=True) if confirm.metric not in metrics]
        if missing:
            common = set.intersection(*logged)
            available = ", ".join(sorted(m for m in common if m.removeprefix(FINETUNE_PREFIX).startswith("test_")))
            self.fail(
                ("confirm", "metric"),
                f"{confirm.metric!r} is not logged by {', '.join(missing)} (available: {available})",
            )

    def _check_strategy(self, models: list[ModelPlan], shared: list[Dimension]) -> None:
        spec = self.spec
        if len(spec.objectives) > 1 and spec.pruner.name != "none":
            self.fail(
                ("pruner", "name"), "pruning needs a single objective (Optuna cannot prune multi-objective trials)"
            )
        if spec.sampler.name == "grid":
            for plan_where, dims in [(("search",), shared)] + [
                (("models", i, "search"), list(p.dimensions)) for i, p in enumerate(models)
            ]:
                for d in dims:
                    if not d.discrete:
                        self.fail(plan_where + (d.target,), "a grid needs discrete values: give choices or a step")
        from sweeplab.search import build_pruner, build_sampler

        # Building them is cheap and checks the kwargs against the real constructors.
        builders = {
            "sampler": lambda: build_sampler(spec.sampler, spec.trainer.seed, len(spec.objectives)),
            "pruner": lambda: build_pruner(spec.pruner),
        }
        for key, build in builders.items():
            try:
                build()
            except TypeError as error:
                self.fail((key, "kwargs"), str(error))
            except ValueError as error:
                self.fail((key,), str(error))

    def _transfer_proxy(
        self, where: Location, model: Any, parameters: Mapping[str, Parameter], fixed: dict
    ) -> str | None:
        """Strategy transfer: the search's trials train at ``transfer.proxy`` (set in ``fixed``), which the model
        must take and must not set itself. Returns the parameter it set (None: none)."""
        transfer = self.spec.transfer
        if self.spec.strategy != "transfer" or transfer is None:
            return None
        name = transfer.parameter
        if name not in parameters or parameters[name].annotation == "training":
            self.fail(("transfer", "parameter"), f"{model.key} has no constructor parameter {name!r}")
        elif name in model.params or name in model.search:
            section = "params" if name in model.params else "search"
            self.fail(
                where + (section, name),
                f"strategy transfer sets {name}: transfer.proxy in the search, transfer.targets after it",
            )
        else:
            fixed[name] = transfer.proxy
            return name
        return None

    def _check_transfer(self) -> None:
        if self.spec.strategy == "transfer" and self.spec.transfer is None:
            self.fail(("strategy",), "strategy transfer needs a transfer block: {proxy: <width>, targets: [...]}")
        if self.spec.strategy != "transfer" and self.spec.transfer is not None:
            self.fail(("transfer",), "only used with strategy: transfer")

    def _check_parametrizations(
        self,
        models: list[ModelPlan],
        shared_fixed: dict[str, Any],
        shared_dims: list[Dimension],
        finetune: FinetuneStage | None,
    ) -> None:
        """``parametrization: mup`` needs a ``base_width`` and an optimiser muP has rules for (Adam, AdamW), in both
        training stages."""
        shared_optimizers = _values_of("optimizer", shared_fixed, shared_dims) or [TRAINING_FIELDS["optimizer"].default]
        finetune_optimizers = (
            _values_of("optimizer", finetune.fixed, list(finetune.dimensions)) if finetune is not None else []
        )
        for index, plan in enumerate(models):
            model = self.spec.models[index]
            where: Location = ("models", index)
            mup = "mup" in _values_of("parametrization", plan.fixed, list(plan.dimensions))
            for base_width in _values_of("base_width", plan.fixed, list(plan.dimensions)) or [None]:
                params = {"parametrization": "mup" if mup else "standard", "base_width": base_width}
                problem = parametrization_problem(params)
                if problem is not None:
                    self.fail(_written_at(where, model, problem[0]), problem[1])
                    break
            if not mup:
                continue
            if self.spec.strategy == "self_tuning":
                self.fail(
                    _written_at(where, model, "parametrization"),
                    "parametrization mup cannot be self-tuned: the best-response layers replace the layers it scales",
                )
            first_stage_at = (
                _written_at(where, model, "optimizer")
                if "optimizer" in {*model.params, *model.search}
                else ("search", "optimizer")
            )
            optimizers = _values_of("optimizer", plan.fixed, list(plan.dimensions)) or shared_optimizers
            for at, stage_optimizers in [
                (first_stage_at, optimizers),
                (("finetune", "search", "optimizer"), finetune_optimizers),
            ]:
                wrong = [optimizer for optimizer in stage_optimizers if optimizer not in MUP_OPTIMIZERS]
                if wrong:
                    self.fail(
                        at,
                        f"{model.key} has parametrization mup, whose learning-rate rules are Adam's "
                        f"({', '.join(MUP_OPTIMIZERS)}); got optimizer {wrong[0]!r}",
                    )

    def _check_self_tuning(self) -> tuple[list[Dimension], dict[str, Any], list[Dimension]]:
        """The regularisation hyperparameters (consistent declarations; sampled unless tuned online) and the
        self-tuning settings (constants or searched spaces, only with ``strategy: self_tuning``)."""
        spec = self.spec
        for name, declared in spec.hyperparameters.items():
            for key, message in declared.problems():
                self.fail(("hyperparameters", name, key), message)
        if spec.strategy == "self_tuning" and not spec.hyperparameters:
            self.fail(("hyperparameters",), "strategy self_tuning needs hyperparameters to tune")
        if spec.strategy != "self_tuning" and spec.self_tuning:
            self.fail(("self_tuning",), "only used with strategy: self_tuning")
        settings = {name: Parameter(name, "self_tuning", f.default) for name, f in _FIELDS_OF["self_tuning"].items()}
        fixed, dimensions = self._check_space(("self_tuning",), dict(spec.self_tuning), settings, "stn.")
        if spec.strategy == "self_tuning":
            return [], fixed, dimensions
        if spec.sampler.name == "grid" and spec.hyperparameters:
            self.fail(("hyperparameters",), "a grid cannot sample these continuous ranges: use another sampler")
        sampled = [
            Dimension(f"hp.{name}", name, int(d.low), int(d.high), integer=True)
            if d.discrete
            else Dimension(f"hp.{name}", name, d.low, d.high)
            for name, d in spec.hyperparameters.items()
        ]
        return sampled, {}, []

    def _check_uris(self) -> None:
        for key in _URI_SCHEMES:
            problem = url_problem(key, self.spec.storage if key == "storage" else self.spec.tracking.uri)
            if problem is not None:
                self.fail(tuple(key.split(".")), problem)

    def _check_budget(self, study: Study) -> None:
        budget = self.spec.budget
        if self.spec.sampler.name == "grid":
            size = study.grid_size()
            if budget.n_trials is not None and budget.n_trials > size:
                self.fail(("budget", "n_trials"), f"the grid has only {size} points")
        elif budget.n_trials is None and budget.timeout is None:
            self.fail(("budget",), "give n_trials or timeout")


# Corners of a search space tried by a grid check: enough for every study written by hand, bounded for any.
_MAX_GRID_CHECKS = 4096


def _values_of(name: str, fixed: Mapping[str, Any], dimensions: list[Dimension]) -> list[Any]:
    """The values ``name`` can take: its fixed value, its choices, or a range's ends (empty: not set)."""
    if name in fixed:
        return [fixed[name]]
    return [value for d in dimensions if d.target == name for value in (d.choices or (d.low, d.high))]


def _written_at(where: Location, model: Any, name: str) -> Location:
    """Where a model's parameter ``name`` got its value: its search space, its params, its preset, or the
    architecture's default (the model's params, where a value would go)."""
    if name in model.search:
        return where + ("search", name)
    if name in model.params:
        return where + ("params", name)
    if model.preset is not None and name in MODELS[model.name].presets.get(model.preset, {}):
        return where + ("preset",)
    return where + ("params",)


def _steps_off_range(space: Range) -> str | None:
    """Why ``high`` is not ``low`` plus a whole number of steps (Optuna would move it, with only a warning)."""
    low, high, step = (Decimal(str(number)) for number in (space.low, space.high, space.step))
    if (high - low) % step == 0:
        return None
    below = low + (high - low) // step * step
    steps = f"{space.low} plus a whole number of steps of {space.step}"
    return f"{space.high} is not {steps}: use {below} or {below + step}"


def _unknown(kind: str, name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"unknown {kind} {name!r}" + (
        f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
    )


def _task_metrics(models: list[ModelPlan]) -> set[str]:
    return {metric for plan in models for metric in task_entry(plan.entry.task).metrics}


def _training_parameters() -> dict[str, Parameter]:
    return {name: Parameter(name, "training", info.default) for name, info in TRAINING_FIELDS.items()}


_ANNOTATION_NAMESPACE: dict[str, Any] = {
    "Literal": typing.Literal,
    "Optional": typing.Optional,
    "Union": typing.Union,
    "Sequence": typing.Sequence,
}


def _adapter(parameter: Parameter) -> TypeAdapter[Any] | None:
    """A validator for the parameter's declared type, or None when it cannot be known without importing."""
    if parameter.annotation in _FIELDS_OF:
        info = _FIELDS_OF[parameter.annotation][parameter.name]
        if not info.metadata:
            return TypeAdapter(info.annotation)
        return TypeAdapter(typing.Annotated[(info.annotation, *info.metadata)])  # type: ignore[valid-type]
    if parameter.annotation is None:
        return None
    try:
        annotation = eval(parameter.annotation, dict(_ANNOTATION_NAMESPACE))  # noqa: S307 - our own source
        if annotation is int and parameter.minimum is not None:  # the constructor's own checked_size
            return TypeAdapter(typing.Annotated[int, Field(ge=parameter.minimum)])
        return TypeAdapter(annotation)
    except Exception:  # a type that needs an import (a tensor, a module): not checked here
        return None


def _takes_only_integers(adapter: TypeAdapter[Any] | None, space: Range) -> bool:
    if adapter is None:
        return all(isinstance(v, int) for v in (space.low, space.high, space.step or 1))
    try:
        adapter.validate_python(0.5, strict=True)
    except ValidationError as error:
        # Only a type error means integers: a float field may refuse 0.5 for its bounds (``ge=1``).
        return any(details["type"].startswith("int") for details in error.errors())
    return False


def _normalised(value: Any, adapter: TypeAdapter[Any] | None) -> Any:
    # Keep YAML's value but as the declared type (an int where a float is declared becomes a float).
    if adapter is None:
        return value
    validated = adapter.validate_python(value)
    return validated if isinstance(validated, (bool, int, float, str, type(None), list, dict, tuple)) else value


def _first_message(error: ValidationError) -> str:
    details = error.errors()[0]
    return details["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
