"""Registry of architectures and tasks, readable without importing torch.

An entry names its class by import path; the class is imported only when a model is built. The constructor's
parameters are read from the source with `ast` (see `constructor_parameters`), so `sweeplab validate` checks a
study's model parameters against the real, typed constructor in a fraction of a second, and there is no second
copy of the parameter list to drift out of date (a test compares it with `inspect.signature`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "INJECTED_PARAMETERS",
    "MODELS",
    "TASKS",
    "ModelEntry",
    "Parameter",
    "TaskEntry",
    "build_model",
    "constructor_parameters",
    "import_target",
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


@dataclass(frozen=True)
class ModelEntry:
    """An architecture: its class, the task it serves, the data layout it takes, and named presets."""

    name: str
    target: str
    task: str
    spatial_dims: int
    description: str
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def import_target(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        # A default that is not a literal (a call, a name): present, but not known without importing.
        return ast.unparse(node)


@cache
def constructor_parameters(target: str) -> dict[str, Parameter]:
    """The keyword parameters of ``ClassName.__init__`` at ``target``, read from source without importing it."""
    module_name, _, class_name = target.partition(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise LookupError(f"cannot find module {module_name!r} for {target!r}")
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read(), filename=spec.origin)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return _parameters_of(item.args)
            raise LookupError(f"{target!r} must define __init__ itself (its parameters are read from source)")
    raise LookupError(f"no class {class_name!r} in {spec.origin}")


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


class _Registry(Mapping[str, Any]):
    def __init__(self, kind: str, entries: list[Any]) -> None:
        self._kind = kind
        self._entries = {entry.name: entry for entry in entries}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise KeyError(f"unknown {self._kind} {name!r} (known: {known})") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


_OPERATOR_METRICS = ("train_loss", "val_loss", "val_rel_l2", "test_loss", "test_rel_l2")

TASKS: Mapping[str, TaskEntry] = _Registry(
    "task",
    [
        TaskEntry(
            name="operator",
            target="sweeplab_modules.tasks.operator:OperatorLearning",
            metrics=_OPERATOR_METRICS,
            losses=("rel_l2", "mse"),
            description="learn a map between functions on a grid (neural operators)",
        ),
    ],
)

MODELS: Mapping[str, ModelEntry] = _Registry(
    "model",
    [
        ModelEntry(
            name="fno1d",
            target="sweeplab_modules.operators.fno:FNO1d",
            task="operator",
            spatial_dims=1,
            description="Fourier Neural Operator, 1D (Li et al. 2020)",
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
            name="fno2d",
            target="sweeplab_modules.operators.fno:FNO2d",
            task="operator",
            spatial_dims=2,
            description="Fourier Neural Operator, 2D (Li et al. 2020)",
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
    ],
)


def build_model(name: str, in_channels: int, out_channels: int, **params: Any) -> Any:
    """Instantiate registered model ``name`` (imports torch)."""
    cls = import_target(MODELS[name].target)
    return cls(in_channels=in_channels, out_channels=out_channels, **params)
