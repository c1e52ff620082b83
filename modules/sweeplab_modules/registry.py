"""Registry of architectures and tasks, readable without importing torch.

An entry names its class by import path; the class is imported only when a model is built. The constructor's
parameters are read from the source with `ast` (see `constructor_parameters`), so `sweeplab validate` checks a
study's model parameters against the real, typed constructor in a fraction of a second, and there is no second
copy of the parameter list to drift out of date (a test compares it with `inspect.signature`). A registered
variant (``FNO2d``: ``FNO`` at ``spatial_dims=2``) has its generic class's parameters less the ones it fixes,
which a study cannot set, with a preset of this registry as defaults: published settings are written here only.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "BUILTIN_PACKAGE",
    "INJECTED_PARAMETERS",
    "MODELS",
    "TASKS",
    "Constructor",
    "ModelEntry",
    "Parameter",
    "PluginRegistry",
    "TaskEntry",
    "build_model",
    "constructor_parameters",
    "fixed_arguments",
    "import_target",
    "is_target",
    "model_attributes",
    "model_constructor",
    "model_target",
    "task_entry",
]

# Constructor arguments that come from the data set, never from the study.
INJECTED_PARAMETERS = frozenset({"in_channels", "out_channels"})

_REQUIRED = object()


@dataclass(frozen=True)
class Parameter:
    """One constructor parameter as written in the source."""

    name: str
    annotation: str | None
    default: Any = _REQUIRED
    minimum: int | None = None
    """The least integer the constructor accepts (its ``checked_size(name, value, minimum=...)``), if it checks."""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class TaskEntry:
    """A Lightning task: what it trains and which metrics it logs (``<stage>_<name>``)."""

    name: str
    target: str
    metrics: tuple[str, ...]
    losses: tuple[str, ...]
    description: str = ""
    resolution_metrics: tuple[str, ...] = ()
    """Metrics also logged at each of the data set's ``test_resolutions``, as ``<metric>_<size>``."""
    base: str | None = None
    """A user's task: the registered task it derives from (None: only from SweepTask)."""
    physics_losses: tuple[str, ...] = ()
    """Losses of the data's equation rather than the targets: only for data sets that state its coefficients."""

    @property
    def kind(self) -> str:
        """The registered task whose data this task trains on (a user's task without one: its import path)."""
        return self.base or self.name


@dataclass(frozen=True)
class ModelEntry:
    """An architecture: its class, the task it serves, the data layout it takes, and named presets."""

    name: str
    target: str
    task: str
    spatial_dims: int
    description: str
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The same weights evaluate at resolutions other than the training one (a discretisation of an operator).
    resolution_invariant: bool = False
    grid_check: str | None = None
    """Import path of a torch-free ``(params, grid) -> (parameter, problem) | None`` (``sweeplab_modules.constraints``):
    what the architecture needs of the grids it sees; ``sweeplab validate`` runs it."""


def import_target(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def is_target(name: str) -> bool:
    """Whether ``name`` is an import path ``package.module:ClassName`` rather than a registered name."""
    return ":" in name


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        # A default that is not a literal (a call, a name): present, but not known without importing.
        return ast.unparse(node)


@cache
def constructor_parameters(target: str) -> dict[str, Parameter]:
    """The keyword parameters of ``ClassName.__init__`` at ``target``, read from source without importing it.

    A variant (``class FNO2d(FNO, spatial_dims=2, preset=("fno2d", "reference")): ...``, see
    ``sweeplab_modules.operators._variants``) has its generic class's parameters less the fixed ones, with the
    preset's values as defaults.
    """
    module_name, node = _class_definition(target)
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            minimums = _size_minimums(module_name, node)
            return {
                name: dataclasses.replace(parameter, minimum=minimums.get(name))
                for name, parameter in _parameters_of(item.args).items()
            }
    if not node.keywords:
        raise LookupError(f"{target!r} must define __init__ or be a variant (its parameters are read from source)")
    declaration = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
    model, preset = declaration.pop("preset", (None, None))
    defaults = MODELS[model].presets[preset] if model is not None else {}
    generic = constructor_parameters(_base_target(module_name, node))
    return {
        name: dataclasses.replace(parameter, default=defaults.get(name, parameter.default))
        for name, parameter in generic.items()
        if name not in declaration
    }


def fixed_arguments(target: str) -> dict[str, Any]:
    """The constructor arguments that the variant at ``target`` fixes (a study cannot set them), read from source."""
    module_name, node = _class_definition(target)
    if _defines_init(node) or not node.keywords:
        return {}
    fixed = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords if keyword.arg != "preset"}
    return {**fixed_arguments(_base_target(module_name, node)), **fixed}


def _size_minimums(module_name: str, node: ast.ClassDef) -> dict[str, int]:
    """``{name: minimum}`` of every ``checked_size("name", value, minimum=...)`` call in the class and in its bases
    of the same module: the sizes its constructor rejects, known to the checker without importing torch."""
    minimums: dict[str, int] = {}
    for base in node.bases:
        try:
            minimums.update(_size_minimums(*_class_definition(f"{module_name}:{ast.unparse(base)}")))
        except LookupError:  # a base from another module (nn.Module, a mixin)
            continue
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "checked_size"):
            continue
        name = call.args[0] if call.args else None
        minimum = next((k.value for k in call.keywords if k.arg == "minimum"), None)
        if isinstance(name, ast.Constant) and isinstance(minimum, ast.Constant) and isinstance(minimum.value, int):
            minimums[name.value] = max(minimum.value, minimums.get(name.value, minimum.value))
    return minimums


def model_attributes(target: str) -> frozenset[str]:
    """The attributes ``self.<name> = ...`` that the class at ``target`` (or a base of its module) assigns, read from
    source: the top-level names of its submodules and parameters, which a study's ``finetune.trainable`` names."""
    module_name, node = _class_definition(target)
    names: set[str] = set()
    for base in node.bases:
        try:
            names |= model_attributes(f"{module_name}:{ast.unparse(base)}")
        except LookupError:  # a base from another module (nn.Module, a mixin)
            continue
    for statement in ast.walk(node):
        targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
        for assigned in targets if isinstance(statement, (ast.Assign, ast.AnnAssign)) else []:
            if (
                isinstance(assigned, ast.Attribute)
                and isinstance(assigned.value, ast.Name)
                and assigned.value.id == "self"
            ):
                names.add(assigned.attr)
    return frozenset(names)


def _defines_init(node: ast.ClassDef) -> bool:
    return any(isinstance(item, ast.FunctionDef) and item.name == "__init__" for item in node.body)


def _class_definition(target: str) -> tuple[str, ast.ClassDef]:
    module_name, _, class_name = target.partition(":")
    node = _find_class(_module_tree(module_name), class_name)
    if node is None:
        raise LookupError(f"no class {class_name!r} in module {module_name}")
    return module_name, node


def _module_tree(module_name: str) -> ast.Module:
    try:
        spec = importlib.util.find_spec(module_name)
    except ImportError as error:  # a parent package that is missing or fails to import
        raise LookupError(f"cannot find module {module_name!r}: {error}") from None
    if spec is None or spec.origin is None:
        raise LookupError(f"cannot find module {module_name!r} (is its folder on sys.path?)")
    if not spec.origin.endswith(".py"):
        raise _NotReadable(f"{module_name} is compiled ({spec.origin})")
    return _parsed(spec.origin, os.stat(spec.origin).st_mtime_ns)


@cache
def _parsed(origin: str, modified_ns: int) -> ast.Module:
    """The syntax tree of a source file, parsed again once it changes (a user editing a model in a notebook)."""
    with open(origin, encoding="utf-8") as source:
        return ast.parse(source.read(), filename=origin)


def _find_class(tree: ast.Module, class_name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)


def _base_target(module_name: str, variant: ast.ClassDef) -> str:
    """The generic class of a variant: its first base, a class of the same module."""
    if not variant.bases or not isinstance(variant.bases[0], ast.Name):
        raise LookupError(f"variant {variant.name!r} must name its generic class as its first base")
    return f"{module_name}:{variant.bases[0].id}"


def _parameters_of(arguments: ast.arguments) -> dict[str, Parameter]:
    positional = arguments.posonlyargs + arguments.args
    defaults: list[Any] = [_REQUIRED] * (len(positional) - len(arguments.defaults))
    defaults += [_literal(d) for d in arguments.defaults]
    pairs = list(zip(positional, defaults, strict=False))[1:]  # drop self
    pairs += [
        (arg, _REQUIRED if default is None else _literal(default))
        for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=False)
    ]
    return {
        arg.arg: Parameter(arg.arg, ast.unparse(arg.annotation) if arg.annotation else None, default)
        for arg, default in pairs
    }


class _NotReadable(LookupError):
    """A constructor that cannot be read from source: the class is imported instead."""


@dataclass(frozen=True)
class Constructor:
    """What a model class takes: its keyword parameters (``in_channels``/``out_channels`` included), whether it
    also takes any other keyword (``**kwargs``: those are passed on unchecked), and how this was learnt: None
    when read from the source without importing it, else why the module had to be imported."""

    parameters: dict[str, Parameter]
    open: bool = False
    imported: str | None = None


# How a class derives from torch.nn.Module in the source that defines it.
_MODULE_BASES = frozenset({"nn.Module", "torch.nn.Module", "Module"})


def model_constructor(target: str) -> Constructor:
    """The constructor of the model class at ``target`` (``package.module:ClassName``).

    Read from the module's source without importing it (so without torch) when the class defines ``__init__``
    with named parameters and derives from ``nn.Module`` in that source; otherwise (a compiled module, an
    inherited ``__init__``, ``**kwargs``, base classes from elsewhere) the module is imported and the class read
    with ``inspect.signature``. Raises LookupError when the class cannot be found or imported, TypeError when it
    is not a ``torch.nn.Module``.
    """
    try:
        module_name, node = _class_definition(target)
        reason = _why_not_readable(_module_tree(module_name), node)
    except _NotReadable as error:
        reason = str(error)
    if reason is not None:
        return _imported_constructor(target, reason)
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    return Constructor(_parameters_of(init.args) if init is not None else constructor_parameters(target))


def _why_not_readable(tree: ast.Module, node: ast.ClassDef) -> str | None:
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        variant = node.keywords and all(keyword.arg != "metaclass" for keyword in node.keywords)
        return None if variant and _derives_from_module(tree, node) else f"{node.name} inherits its __init__"
    if init.args.kwarg is not None:
        return f"{node.name}.__init__ takes **{init.args.kwarg.arg}"
    if not _derives_from_module(tree, node):
        return f"{node.name} derives from classes defined elsewhere"
    return None


def _derives_from_module(tree: ast.Module, node: ast.ClassDef) -> bool:
    for base in node.bases:
        if ast.unparse(base) in _MODULE_BASES:
            return True
        local = _find_class(tree, base.id) if isinstance(base, ast.Name) else None
        if local is not None and local is not node and _derives_from_module(tree, local):
            return True
    return False


def _import_user_target(target: str) -> Any:
    try:
        return import_target(target)
    except Exception as error:  # the user's module may raise anything on import: its message is the answer
        raise LookupError(f"cannot import {target}: {type(error).__name__}: {error}") from None


def _imported_constructor(target: str, reason: str) -> Constructor:
    from torch import nn

    cls = _import_user_target(target)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{target} is not a torch.nn.Module subclass")
    parameters: dict[str, Parameter] = {}
    takes_any = False
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_any = True
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            annotation = parameter.annotation
            text = None if annotation is parameter.empty else annotation
            parameters[parameter.name] = Parameter(
                parameter.name,
                text if text is None or isinstance(text, str) else inspect.formatannotation(text),
                _REQUIRED if parameter.default is parameter.empty else parameter.default,
            )
    module_name = target.partition(":")[0]
    return Constructor(parameters, takes_any, f"{reason}: imported {module_name}, read with inspect.signature")


def model_target(name: str) -> str:
    """The class of a registered model name, or ``name`` itself when it is an import path."""
    return name if is_target(name) else MODELS[name].target


@cache
def task_entry(name: str) -> TaskEntry:
    """A registered task, or a user's task class at ``package.module:ClassName`` (imported).

    A user's task subclasses ``SweepTask`` (usually ``OperatorLearning``, to keep its normalisation and
    metrics), is built as ``TaskClass(model, training, in_channels=..., out_channels=...)``, computes its loss in
    ``shared_step(batch, stage)`` and logs ``<stage>_<name>`` with ``log_epoch_mean``. It may declare the metrics
    it logs (class attribute ``metrics``, e.g. ``("train_loss", "val_loss", "val_rel_l2", ...)``) and the values
    of the ``loss`` training parameter it accepts (``losses``); those it does not declare are the registered
    task's it derives from.
    """
    if not is_target(name):
        return TASKS[name]
    from sweeplab_modules.tasks.base import SweepTask

    cls = _import_user_target(name)
    if not (isinstance(cls, type) and issubclass(cls, SweepTask)):
        raise TypeError(f"{name} is not a subclass of sweeplab_modules.tasks.base.SweepTask")
    registered = {entry.target: entry for entry in TASKS.values()}
    base = next(
        (registered[key] for c in cls.__mro__ if (key := f"{c.__module__}:{c.__qualname__}") in registered), None
    )
    metrics = tuple(getattr(cls, "metrics", None) or (base.metrics if base else ()))
    if not metrics:
        raise TypeError(f"{name} must declare the metrics it logs (class attribute metrics = ('val_loss', ...))")
    return TaskEntry(
        name=name,
        target=name,
        metrics=metrics,
        losses=tuple(getattr(cls, "losses", None) or (base.losses if base else ())),
        description=(inspect.getdoc(cls) or "").split("\n")[0],
        resolution_metrics=base.resolution_metrics if base else (),
        base=base.name if base else None,
    )


class _Registry(Mapping[str, Any]):
    def __init__(self, kind: str, entries: list[Any]) -> None:
        self._kind = kind
        self._entries = {entry.name: entry for entry in entries}

    def _all(self) -> dict[str, Any]:
        return self._entries

    def __getitem__(self, name: str) -> Any:
        try:
            return self._all()[name]
        except KeyError:
            known = ", ".join(sorted(self._all()))
            raise KeyError(f"unknown {self._kind} {name!r} (known: {known})") from None

    # Entries set and removed in place: a test registers a probe model or a changed data set for a while.
    def __setitem__(self, name: str, entry: Any) -> None:
        self._all()[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._all()[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


BUILTIN_PACKAGE = "sweeplab"


class PluginRegistry(_Registry):
    """The built-in entries and those installed packages register under the entry-point ``group``, loaded at the
    first lookup. A plugin's entry point is named like the entry it points to (a ``ModelEntry`` for
    ``sweeplab.models``, a ``DatasetEntry`` for ``sweeplab.datasets``). A name registered twice, or an entry point
    that cannot be loaded, is kept out and described in ``problems`` (by name)."""

    def __init__(self, kind: str, group: str, entries: list[Any], entry_type: Callable[..., Any]) -> None:
        super().__init__(kind, entries)
        self.group = group
        self._entry_type = entry_type
        self._plugins: dict[str, str] | None = None  # name -> package, once loaded
        self._problems: dict[str, str] = {}

    @property
    def problems(self) -> dict[str, str]:
        """Names registered twice or plugins that failed to load, each with the message that says so."""
        self._all()
        return self._problems

    def _all(self) -> dict[str, Any]:
        if self._plugins is None:
            self._plugins = self._load()
        return self._entries

    def reload(self) -> None:
        """Look for plugins again (after installing one into the running interpreter)."""
        for name in self._plugins or {}:
            self._entries.pop(name, None)
        self._plugins = None

    def _load(self) -> dict[str, str]:
        plugins: dict[str, str] = {}
        self._problems = {}
        for point in importlib.metadata.entry_points(group=self.group):
            package = point.dist.name if point.dist is not None else point.module
            if point.name in self._entries:
                self._problems[point.name] = (
                    f"{self._kind} {point.name!r} of package {package!r} clashes with the one of package "
                    f"{plugins.get(point.name, BUILTIN_PACKAGE)!r}: uninstall one, or rename the plugin's entry point"
                )
                continue
            try:
                entry = point.load()
            except Exception as error:  # a broken plugin must not stop the others: it is reported
                self._problems[point.name] = f"{self._kind} {point.name!r} of package {package!r}: {error}"
                continue
            if not isinstance(entry, self._entry_type) or entry.name != point.name:
                self._problems[point.name] = (
                    f"entry point {point.name} = {point.value} of package {package!r} must be a "
                    f"{self._entry_type.__name__} named {point.name!r}"
                )
                continue
            self._entries[point.name] = entry
            plugins[point.name] = package
        return plugins

    def source(self, name: str) -> str:
        """The package that registered ``name``: ``sweeplab`` for the built-ins, else the plugin's."""
        self._all()
        return (self._plugins or {}).get(name, BUILTIN_PACKAGE)


_OPERATOR_METRICS = (
    "train_loss",
    "val_loss",
    "val_rel_l2",
    "val_rel_h1",
    "test_loss",
    "test_rel_l2",
    "test_rel_h1",
)


def _stage_metrics(*names: str) -> tuple[str, ...]:
    return ("train_loss", *(f"{stage}_{name}" for stage in ("val", "test") for name in ("loss", *names)))


_CONTRASTIVE_METRICS = _stage_metrics("probe_pre", "probe_post", "knn_pre", "knn_post")
_INCREMENTAL_METRICS = _stage_metrics("acc", "ac", "am", "ecc", "ecc_min")
_STITCHING_METRICS = _stage_metrics("acc", "stitched_acc")
_CLASSIFICATION_METRICS = _stage_metrics("acc")

TASKS: Mapping[str, TaskEntry] = _Registry(
    "task",
    [
        TaskEntry(
            name="operator",
            target="sweeplab_modules.tasks.operator:OperatorLearning",
            metrics=_OPERATOR_METRICS,
            losses=("rel_l2", "rel_h1", "mse", "vorticity_residual"),
            physics_losses=("vorticity_residual",),
            description="learn a map between functions on a grid (neural operators)",
            resolution_metrics=("test_rel_l2", "test_rel_h1"),
        ),
        TaskEntry(
            name="contrastive",
            target="sweeplab_modules.tasks.contrastive:ContrastiveLearning",
            metrics=_CONTRASTIVE_METRICS,
            losses=("simclr", "supcon", "hydra"),
            description="contrastive representations (SimCLR, SupCon); linear-probe and k-NN accuracy pre/post head",
        ),
        TaskEntry(
            name="class_incremental",
            target="sweeplab_modules.tasks.classification:ClassIncrementalLearning",
            metrics=_INCREMENTAL_METRICS,
            losses=("cross_entropy", "hoc"),
            description="classes arrive in groups, models replaced; compatibility of successive models (AC, AM)",
        ),
        TaskEntry(
            name="stitching",
            target="sweeplab_modules.tasks.classification:ZeroShotStitching",
            metrics=_STITCHING_METRICS,
            losses=("cross_entropy",),
            description="two independently trained classifiers; accuracy of encoder-of-one + decoder-of-other",
        ),
        TaskEntry(
            name="classification",
            target="sweeplab_modules.stn._classifier:Classification",
            metrics=_CLASSIFICATION_METRICS,
            losses=("cross_entropy",),
            description="supervised image classification: cross-entropy, accuracy",
        ),
        TaskEntry(
            name="assimilation",
            target="sweeplab_modules.tasks.assimilation:StateAssimilation",
            metrics=_stage_metrics("rel_l2", "rel_l2_forecast", "final_rel_l2", "final_rel_l2_forecast"),
            losses=("rel_l2", "mse"),
            description=(
                "initial state + sparse noisy observations -> the next H states; relative L2 with and without "
                "the observations, at the horizon's end, and with fewer sensors (test_rel_l2_sensors_<m>)"
            ),
        ),
        TaskEntry(
            name="proximal",
            target="sweeplab_modules.tasks.proximal:ProximalDenoising",
            metrics=_stage_metrics("mse", "psnr", "prox_error", "convexity_violation"),
            losses=("proximal_matching", "l1", "l2"),
            description=(
                "learned proximal operator from (noisy, clean) pairs: proximal matching with its schedule; PSNR "
                "(images), distance to the exact prox (where known), convexity of the potential"
            ),
        ),
        TaskEntry(
            name="dcdm",
            target="sweeplab_modules.tasks.dcdm:ConjugateDirectionLearning",
            metrics=_stage_metrics("rel_residual", "energy_error"),
            losses=("residual",),
            description=(
                "search directions for conjugate-direction solves: the DCDM paper's loss ||b - A x_hat||^2 with the "
                "optimally scaled direction; one step's relative residual and A-norm error on held-out systems"
            ),
        ),
        TaskEntry(
            name="transfer_classification",
            target="sweeplab_modules.tasks.classification:TransferClassification",
            metrics=_stage_metrics("acc", "probe_transfer", "knn_transfer"),
            losses=("cross_entropy",),
            description="classification (Riemannian optimiser); linear-probe transfer of features to held-out classes",
        ),
    ],
)

MODELS: PluginRegistry = PluginRegistry(
    "model",
    "sweeplab.models",
    [
        ModelEntry(
            name="fno1d",
            target="sweeplab_modules.operators.fno:FNO1d",
            grid_check="sweeplab_modules.constraints:fno_grid_problem",
            task="operator",
            spatial_dims=1,
            description="Fourier Neural Operator, 1D (Li et al. 2020)",
            resolution_invariant=True,
            presets={
                # The paper's first code: ReLU, no domain padding; the current reference code: GELU.
                "paper": {
                    "width": 64,
                    "modes": 16,
                    "n_layers": 4,
                    "projection_width": 128,
                    "padding": 0,
                    "activation": "relu",
                },
                "reference": {
                    "width": 64,
                    "modes": 16,
                    "n_layers": 4,
                    "projection_width": 128,
                    "padding": 0,
                    "activation": "gelu",
                },
            },
        ),
        ModelEntry(
            name="sfno",
            target="sweeplab_modules.operators.sfno:SFNO",
            grid_check="sweeplab_modules.constraints:sfno_grid_problem",
            task="operator",
            spatial_dims=2,
            description="Spatiotemporal FNO, snapshots to snapshots by 3D FFT over (x, y, t) (Cao et al. 2025)",
            resolution_invariant=True,
            presets={
                # FNO Navier-Stokes data, the code's defaults (torch-cfd sfno/README): 10 -> 40 snapshots.
                "paper": {
                    "width": 20,
                    "modes": 12,
                    "modes_t": 5,
                    "n_layers": 4,
                    "latent_steps": 10,
                    "channel_expansion": 128,
                    "beta": 0.02,
                    "delta": 0.1,
                },
                "small": {"width": 8, "modes": 6, "modes_t": 3, "latent_steps": 6, "channel_expansion": 32},
            },
        ),
        ModelEntry(
            name="fno2d",
            target="sweeplab_modules.operators.fno:FNO2d",
            grid_check="sweeplab_modules.constraints:fno_grid_problem",
            task="operator",
            spatial_dims=2,
            description="Fourier Neural Operator, 2D (Li et al. 2020)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "width": 32,
                    "modes": 12,
                    "n_layers": 4,
                    "projection_width": 128,
                    "padding": 0,
                    "activation": "relu",
                },
                "reference": {
                    "width": 32,
                    "modes": 12,
                    "n_layers": 4,
                    "projection_width": 128,
                    "padding": 9,
                    "activation": "gelu",
                },
            },
        ),
        # U-Net, MgNO, LSM: "paper" presets are the authors' Darcy settings, "navier_stokes" their Navier-Stokes
        # nu = 1e-5 settings, "small" a CPU size; see the modules' docstrings.
        ModelEntry(
            name="unet2d",
            target="sweeplab_modules.operators.unet:UNet2d",
            task="operator",
            spatial_dims=2,
            description="U-Net baseline, 2D (Ronneberger et al. 2015, as in the LSM paper, Wu et al. 2023)",
            presets={
                "paper": {"width": 64, "n_scales": 5, "normalization": "batch", "projection_width": 64},
                "navier_stokes": {"width": 64, "n_scales": 5, "normalization": "instance", "projection_width": 64},
                "small": {"width": 8, "n_scales": 3, "projection_width": 16},
            },
        ),
        ModelEntry(
            name="mgno",
            target="sweeplab_modules.operators.mgno:MgNO",
            task="operator",
            spatial_dims=2,
            description="MgNO, multigrid V-cycle linear operators (He, Liu, Xu, ICLR 2024, arXiv 2310.19809)",
            resolution_invariant=True,
            presets={
                # FNO (smooth) Darcy command: 5 layers; the rough-Darcy command (0.57 M parameters) uses 4.
                "paper": {
                    "width": 24,
                    "n_layers": 5,
                    "levels": 6,
                    "smoothing_steps": 1,
                    "coarsest_smoothing_steps": 2,
                    "post_smoothing_steps": 0,
                    "padding_mode": "zeros",
                },
                "navier_stokes": {
                    "width": 32,
                    "n_layers": 5,
                    "levels": 5,
                    "smoothing_steps": [1, 1, 1, 2, 2],
                    "post_smoothing_steps": 0,
                    "padding_mode": "circular",
                },
                "small": {"width": 8, "n_layers": 2, "levels": 3, "smoothing_steps": 1},
            },
        ),
        ModelEntry(
            name="lsm",
            target="sweeplab_modules.operators.lsm:LSM2d",
            task="operator",
            spatial_dims=2,
            description="Latent Spectral Model, 2D (Wu et al., ICML 2023, arXiv 2301.12664)",
            presets={
                "paper": {
                    "width": 64,
                    "n_scales": 5,
                    "patch_size": 6,
                    "n_tokens": 4,
                    "n_basis": 12,
                    "n_heads": 8,
                    "projection_width": 128,
                },
                "navier_stokes": {
                    "width": 64,
                    "n_scales": 5,
                    "patch_size": 4,
                    "n_tokens": 4,
                    "n_basis": 12,
                    "n_heads": 8,
                    "projection_width": 128,
                },
                "small": {"width": 8, "n_scales": 3, "patch_size": 2, "n_heads": 2, "projection_width": 16},
            },
        ),
        # DeepONet and MultiONet: "paper" presets are the authors' settings for Burgers in 1D (periodic grid) and
        # piecewise-constant Darcy on 29 x 29 sensors in 2D: DeepONet from Lu et al. 2022 (lu-group/deeponet-fno),
        # MultiONet from Zang & Koutsourelakis 2025 (yaohua32/DGenNO); see sweeplab_modules/operators/deeponet.py.
        # They are also the defaults of the 1D and 2D variants (as "reference" is for FNO1d and FNO2d): the only
        # place these settings are written.
        ModelEntry(
            name="deeponet1d",
            target="sweeplab_modules.operators.deeponet:DeepONet1d",
            task="operator",
            spatial_dims=1,
            description="DeepONet, 1D, branch on sensors + trunk on coordinates (Lu et al. 2021)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "sensors": 128,
                    "n_basis": 128,
                    "branch_width": 128,
                    "branch_layers": 4,
                    "trunk_width": 128,
                    "trunk_layers": 3,
                    "trunk_harmonics": 2,
                    "encoder_layers": 0,
                    "activation": "tanh",
                    "periodic": True,
                },
                "small": {
                    "sensors": 64,
                    "n_basis": 32,
                    "branch_width": 64,
                    "branch_layers": 3,
                    "trunk_width": 64,
                    "trunk_layers": 3,
                    "trunk_harmonics": 8,
                    "encoder_layers": 0,
                    "activation": "tanh",
                    "periodic": True,
                },
            },
        ),
        ModelEntry(
            name="deeponet2d",
            target="sweeplab_modules.operators.deeponet:DeepONet2d",
            task="operator",
            spatial_dims=2,
            description="DeepONet, 2D, CNN branch on sensors + trunk on coordinates (Lu et al. 2021)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "sensors": 29,
                    "n_basis": 128,
                    "branch_width": 128,
                    "branch_layers": 2,
                    "trunk_width": 128,
                    "trunk_layers": 4,
                    "encoder_channels": 64,
                    "encoder_layers": 2,
                    "activation": "relu",
                },
                "small": {
                    "sensors": 17,
                    "n_basis": 32,
                    "branch_width": 32,
                    "branch_layers": 2,
                    "trunk_width": 32,
                    "trunk_layers": 3,
                    "encoder_channels": 8,
                    "encoder_layers": 2,
                    "activation": "relu",
                },
            },
        ),
        ModelEntry(
            name="multionet1d",
            target="sweeplab_modules.operators.deeponet:MultiONet1d",
            task="operator",
            spatial_dims=1,
            description="MultiONet, 1D, layer-wise branch/trunk inner products (Zang & Koutsourelakis 2025)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "sensors": 128,
                    "width": 128,
                    "n_layers": 5,
                    "sum_layers": 4,
                    "encoder_layers": 0,
                    "branch_activation": "silu",
                    "trunk_activation": "silu_sin",
                    "periodic": True,
                },
                "small": {
                    "sensors": 64,
                    "width": 32,
                    "n_layers": 4,
                    "sum_layers": 3,
                    "encoder_layers": 0,
                    "branch_activation": "silu",
                    "trunk_activation": "silu_sin",
                    "periodic": True,
                },
            },
        ),
        ModelEntry(
            name="multionet2d",
            target="sweeplab_modules.operators.deeponet:MultiONet2d",
            task="operator",
            spatial_dims=2,
            description="MultiONet, 2D, CNN branch, layer-wise inner products (Zang & Koutsourelakis 2025)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "sensors": 29,
                    "width": 100,
                    "n_layers": 5,
                    "sum_layers": 4,
                    "encoder_channels": 128,
                    "encoder_layers": 2,
                    "encoder_features": 256,
                    "encoder_activation": "silu",
                    "branch_activation": "silu_id",
                    "trunk_activation": "tanh_sin",
                },
                "small": {
                    "sensors": 17,
                    "width": 32,
                    "n_layers": 4,
                    "sum_layers": 3,
                    "encoder_channels": 8,
                    "encoder_layers": 2,
                    "encoder_features": 32,
                    "encoder_activation": "silu",
                    "branch_activation": "silu_id",
                    "trunk_activation": "tanh_sin",
                },
            },
        ),
        # Sound propagation from a parametrised source (Borrel-Jensen et al., PNAS 2023): "paper" is the authors'
        # default networks (dtu-act/deeponet-acoustic-wave-prop); see sweeplab_modules/operators/acoustic_deeponet.py.
        ModelEntry(
            name="acoustic_deeponet",
            target="sweeplab_modules.operators.acoustic_deeponet:AcousticDeepONet",
            task="operator",
            spatial_dims=2,
            description="DeepONet for room acoustics: pulse at sensors in the branch, (x, y, t) in the trunk "
            "(Borrel-Jensen et al. 2023)",
            resolution_invariant=True,
            presets={
                "paper": {
                    "sensors": 33,
                    "n_basis": 100,
                    "branch_width": 2048,
                    "branch_layers": 5,
                    "trunk_width": 2048,
                    "trunk_layers": 5,
                    "architecture": "mod_mlp",
                    "activation": "sin",
                    "angular_frequency": 30.0,
                    "feature_frequencies": [1.458, 0.729, 0.486],
                },
                "small": {
                    "sensors": 17,
                    "n_basis": 64,
                    "branch_width": 128,
                    "branch_layers": 3,
                    "trunk_width": 128,
                    "trunk_layers": 3,
                    "architecture": "mod_mlp",
                    "activation": "sin",
                    "angular_frequency": 30.0,
                    "feature_frequencies": [1.458, 0.729, 0.486],
                },
            },
        ),
        # Representation learning (no presets: sizes are searched); see sweeplab_modules/representations.
        ModelEntry(
            name="contrastive_cnn",
            target="sweeplab_modules.representations._models:ConvContrastiveNet",
            task="contrastive",
            spatial_dims=2,
            description="small CNN encoder + projection head (none/linear/mlp/reweight/householder) for images",
        ),
        ModelEntry(
            name="contrastive_mlp",
            target="sweeplab_modules.representations._models:MLPContrastiveNet",
            task="contrastive",
            spatial_dims=0,
            description="MLP encoder + projection head (none/linear/mlp/reweight/householder) for vectors",
        ),
        ModelEntry(
            name="incremental_cnn",
            target="sweeplab_modules.representations._models:IncrementalConvNet",
            task="class_incremental",
            spatial_dims=2,
            description="CNN with the fixed d-Simplex classifier (Biondi et al., CVPR 2024) or a learned one",
        ),
        ModelEntry(
            name="stitching_cnn",
            target="sweeplab_modules.representations._models:ConvStitchingPair",
            task="stitching",
            spatial_dims=2,
            description="two CNN classifiers, absolute or relative representations (Moschella et al., ICLR 2023)",
        ),
        ModelEntry(
            name="cnn_classifier",
            target="sweeplab_modules.stn._classifier:ConvClassifier",
            task="classification",
            spatial_dims=2,
            description="small CNN classifier (ConvEncoder + hidden layer) for regularisation studies (self-tuning)",
        ),
        # NODA (Singh et al., ICLR 2024): sizes unverified (no public code); "reference" is FNO-1D's published size.
        ModelEntry(
            name="noda",
            target="sweeplab_modules.operators.noda:SemilinearNeuralOperator",
            task="assimilation",
            spatial_dims=1,
            description="semilinear neural operator: residual FNO prediction + learned-gain correction from "
            "observations (Singh et al. 2024)",
            presets={
                "reference": {"width": 64, "modes": 16, "n_layers": 4, "gain_width": 64, "gain_layers": 4},
                "small": {"width": 16, "modes": 8, "n_layers": 2, "gain_width": 16, "gain_layers": 2},
            },
        ),
        # The Deep Conjugate Direction Method's network (Kaneda et al., ICML 2023; ayano721/2023_DCDM), in 2D; its
        # defaults are the paper's (16 channels, residual blocks 2 / 3 at half resolution / 2).
        ModelEntry(
            name="dcdm",
            target="sweeplab_modules.operators.dcdm:DeepConjugateDirectionNetwork",
            task="dcdm",
            spatial_dims=2,
            description="DCDM: CNN residual -> search direction for conjugate directions (Kaneda et al. 2023)",
            resolution_invariant=True,
            presets={"paper": {"width": 16, "fine_blocks": 2, "coarse_blocks": 3, "final_blocks": 2}},
        ),
        # Learned proximal networks (Fang, Buchanan, Sulam, ICLR 2024; ZhenghanFang/learned-proximal-networks):
        # "paper" presets are the authors' 1-D Laplace notebook and MNIST script (gamma per sqrt(dimension): their
        # MNIST gamma_min 0.08 sqrt(784), doubled per stage over 4 stages); see sweeplab_modules/operators/lpn.py.
        ModelEntry(
            name="lpn",
            target="sweeplab_modules.operators.lpn:LearnedProximalNetwork",
            task="proximal",
            spatial_dims=0,
            description="learned proximal network on vectors: gradient of an input-convex MLP (Fang et al. 2024)",
            presets={
                "paper": {
                    "potential": "mlp",
                    "hidden": 50,
                    "layers": 4,
                    "beta": 10.0,
                    "strong_convexity": 0.0,
                    "pretrain_loss": "l2",
                    "pretrain_fraction": 0.45,
                    "gamma_start": 0.5,
                    "gamma_end": 0.1,
                    "stages": 5,
                    "gamma_spacing": "linear",
                },
            },
        ),
        ModelEntry(
            name="lpn2d",
            target="sweeplab_modules.operators.lpn:LearnedProximalNetwork",
            task="proximal",
            spatial_dims=2,
            description="learned proximal network on images: gradient of an input-convex CNN (Fang et al. 2024)",
            presets={
                "paper": {
                    "potential": "conv",
                    "hidden": 64,
                    "image_size": 28,
                    "dense_width": 64,
                    "beta": 10.0,
                    "strong_convexity": 0.01,
                    "pretrain_loss": "l1",
                    "pretrain_fraction": 0.5,
                    "gamma_start": 0.64,
                    "gamma_end": 0.08,
                    "stages": 4,
                    "gamma_spacing": "geometric",
                    "matching_lr_factor": 0.1,
                },
                "small": {
                    "potential": "conv",
                    "hidden": 16,
                    "image_size": 28,
                    "dense_width": 32,
                    "beta": 10.0,
                    "strong_convexity": 0.01,
                    "pretrain_loss": "l1",
                    "pretrain_fraction": 0.5,
                    "gamma_start": 0.64,
                    "gamma_end": 0.08,
                    "stages": 4,
                    "gamma_spacing": "geometric",
                    "matching_lr_factor": 0.1,
                },
            },
        ),
        ModelEntry(
            name="grassmann_cnn",
            target="sweeplab_modules.representations._models:GrassmannConvNet",
            task="transfer_classification",
            spatial_dims=2,
            description="CNN, Grassmann class subspaces (Wang et al., ICCV 2023) or vector classes (softmax, cosine)",
        ),
        ModelEntry(
            name="hydra_cnn",
            target="sweeplab_modules.representations._models:HydraConvNet",
            task="contrastive",
            spatial_dims=2,
            description="contrastive CNN with Hydra's class-pair gate: arbitrary positive pairs (loss: hydra)",
        ),
        ModelEntry(
            name="poincare_resnet",
            target="sweeplab_modules.representations._models:PoincareResNet",
            task="transfer_classification",
            spatial_dims=2,
            description="Poincare ResNet (van Spengler et al., ICCV 2023) or its Euclidean twin; Riemannian optimiser",
        ),
    ],
    ModelEntry,
)


def build_model(name: str, in_channels: int, out_channels: int, **params: Any) -> Any:
    """Instantiate registered model ``name``, or the class at import path ``name`` (imports torch)."""
    cls = import_target(model_target(name))
    return cls(in_channels=in_channels, out_channels=out_channels, **params)
