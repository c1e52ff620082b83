"""Every registered model and task: the source-read signature matches the real one; every preset builds."""

from __future__ import annotations

import inspect

import pytest
import torch

from sweeplab.data import DATASETS
from sweeplab_modules.registry import (
    INJECTED_PARAMETERS,
    MODELS,
    TASKS,
    build_model,
    constructor_parameters,
    import_target,
)

MODEL_NAMES = sorted(MODELS)
PRESETS = [(name, preset) for name in MODEL_NAMES for preset in MODELS[name].presets]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_source_signature_matches_the_class(name: str) -> None:
    target = MODELS[name].target
    read = constructor_parameters(target)
    real = inspect.signature(import_target(target)).parameters
    assert list(read) == list(real)
    for parameter in real.values():
        assert read[parameter.name].required == (parameter.default is inspect.Parameter.empty)
        if not read[parameter.name].required:
            assert read[parameter.name].default == parameter.default
    assert set(read) >= INJECTED_PARAMETERS, "models take in_channels/out_channels from the data set"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_target_exists(name: str) -> None:
    assert inspect.isclass(import_target(TASKS[name].target))


@pytest.mark.parametrize(("name", "preset"), PRESETS, ids=[f"{n}-{p}" for n, p in PRESETS])
def test_every_preset_builds_and_runs(name: str, preset: str) -> None:
    entry = MODELS[name]
    model = build_model(name, in_channels=1, out_channels=1, **entry.presets[preset])
    grid = (32,) * entry.spatial_dims
    output = model(torch.randn(2, 1, *grid))
    assert output.shape == (2, 1, *grid)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_has_data_to_train_on(name: str) -> None:
    entry = MODELS[name]
    assert any(d.serves(entry.task) and d.spatial_dims == entry.spatial_dims for d in DATASETS.values())


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: .*fno2d"):
        MODELS["nope"]
