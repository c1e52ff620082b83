"""Every registered model and task: the source-read signature matches the real one, the target exists, some data
set serves it. (Every preset is built and trained in test_operators.py.)"""

from __future__ import annotations

import inspect

import pytest

from sweeplab.data import DATASETS
from sweeplab_modules.registry import (
    INJECTED_PARAMETERS,
    MODELS,
    TASKS,
    constructor_parameters,
    import_target,
)

MODEL_NAMES = sorted(MODELS)


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


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_has_data_to_train_on(name: str) -> None:
    entry = MODELS[name]
    assert any(d.serves(entry.task) and d.spatial_dims == entry.spatial_dims for d in DATASETS.values())


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: .*fno2d"):
        MODELS["nope"]


def test_every_preset_is_covered_by_the_operator_preset_tests() -> None:
    # test_operators.py builds, trains and overfits every operator preset; presets of another task need a test.
    with_presets = {name: MODELS[name].task for name in MODEL_NAMES if MODELS[name].presets}
    assert with_presets and set(with_presets.values()) == {"operator"}, with_presets
