"""Every registered model and task: the source-read signature matches the real one, the target exists, some data
set serves it. (Every preset is built and trained in test_operators.py.)"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from conftest import write_study

from sweeplab.data import DATASETS
from sweeplab.spec import StudyError, load_study
from sweeplab_modules.registry import (
    INJECTED_PARAMETERS,
    MODELS,
    TASKS,
    build_model,
    constructor_parameters,
    fixed_arguments,
    import_target,
)

MODEL_NAMES = sorted(MODELS)
VARIANTS = [name for name in MODEL_NAMES if fixed_arguments(MODELS[name].target)]


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
    # test_operators.py builds, trains and overfits every operator preset, test_lpn.py every proximal one,
    # test_semilinear.py every assimilation one, test_dcdm.py every dcdm one; presets of another task need a test.
    with_presets = {name: MODELS[name].task for name in MODEL_NAMES if MODELS[name].presets}
    covered = {"operator", "proximal", "assimilation", "dcdm"}
    assert with_presets and set(with_presets.values()) == covered, with_presets


def test_the_dimension_variants_are_variants() -> None:
    assert set(VARIANTS) >= {"fno1d", "fno2d", "deeponet1d", "deeponet2d", "multionet1d", "multionet2d"}


@pytest.mark.parametrize("name", VARIANTS)
def test_a_variant_fixes_its_dimension_and_takes_its_defaults_from_a_preset(name: str) -> None:
    entry = MODELS[name]
    variant = import_target(entry.target)
    assert fixed_arguments(entry.target) == dict(variant.fixed_arguments) == {"spatial_dims": entry.spatial_dims}
    # No second parameter list to drift: the variant's body declares no constructor.
    assert "def __init__" not in inspect.getsource(variant)
    # Published settings are written in the registry only: the variant's defaults are its preset's values.
    model, preset = variant.defaults_preset
    assert model == name
    defaults = inspect.signature(variant).parameters
    assert {key: defaults[key].default for key in entry.presets[preset]} == dict(entry.presets[preset])
    assert "spatial_dims" not in constructor_parameters(entry.target)
    with pytest.raises(TypeError, match=f"fixes spatial_dims={entry.spatial_dims}"):
        build_model(name, 1, 1, spatial_dims=3)


def test_a_study_cannot_set_an_argument_its_variant_fixes(tmp_path: Path) -> None:
    study = """
        name: fixed
        objective: {metric: val_rel_l2, direction: minimize}
        data: {name: burgers}
        models:
          - name: deeponet1d
            params: {spatial_dims: 2}
        budget: {n_trials: 1}
    """
    # Rejected at its line and field, saying that the registered name fixes it.
    expected = r"study.yaml:7 models\[0\]\.params\.spatial_dims: deeponet1d fixes spatial_dims to 1"
    with pytest.raises(StudyError, match=expected):
        load_study(write_study(tmp_path, study))


def _readme_table_names(heading_row: str, column: int = 0) -> set[str]:
    """The backquoted names in ``column`` of the README tables whose header row starts with ``heading_row``."""
    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    names: set[str] = set()
    for start in [i for i, line in enumerate(lines) if line.startswith(heading_row)]:
        for line in lines[start + 2 :]:
            if not line.startswith("|"):
                break
            cell = line.split("|")[column + 1]
            names.update(part.strip().split()[0].strip("`") for part in cell.split(",") if part.strip().startswith("`"))
    return names


def test_the_readme_tables_list_every_registered_model_and_data_set() -> None:
    # The operator and classification models have their own table; the representation models are listed by task.
    models = _readme_table_names("| model |") | _readme_table_names("| task | models |", column=1)
    assert sorted(set(MODELS) - models) == []
    assert sorted(set(DATASETS) - _readme_table_names("| data set |")) == []
