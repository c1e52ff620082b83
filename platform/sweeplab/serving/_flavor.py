"""The ``sweeplab`` MLflow Model flavour: a best trial's checkpoint and ``ModelDescription`` as an MLflow Model
with a ``python_function`` flavour (``mlflow.pyfunc.load_model``; this module is its loader) whose ``predict``
maps an array of inputs in physical units to outputs in physical units, with a signature (grid dimensions left
free for a resolution-invariant architecture) and an input example (test samples). No pickle: the weights are
read back with ``weights_only=True``; ``sweeplab.load_model`` gives the torch module."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.record import CHECKPOINT_FILE, DESCRIPTION_FILE, MLFLOW_MODEL_NAME, MODEL_DIR, ModelDescription

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    from sweeplab.serving._module import PhysicalModel

__all__ = ["FLAVOR_NAME", "log_mlflow_model", "model_folder", "save_mlflow_model"]

FLAVOR_NAME = "sweeplab"
_REQUIREMENTS = ("sweeplab", "torch", "pytorch_lightning", "mlflow")


def save_mlflow_model(
    path: Path,
    checkpoint: Path,
    description: ModelDescription,
    input_example: np.ndarray,
    mlflow_model: Model | None = None,
) -> None:
    """Write the MLflow Model of ``checkpoint`` to ``path`` (a new folder)."""
    import mlflow.pyfunc
    from mlflow.models import Model

    from sweeplab._provenance import versions
    from sweeplab.serving._module import rebuild

    with tempfile.TemporaryDirectory(prefix="sweeplab-model-") as folder:
        data = Path(folder) / MODEL_DIR
        data.mkdir()
        shutil.copy(checkpoint, data / CHECKPOINT_FILE)
        (data / DESCRIPTION_FILE).write_text(description.to_json())
        # What a loader gets, checked before it is logged; its outputs give the signature's output shape.
        output_example = rebuild(description, data / CHECKPOINT_FILE).predict(input_example)
        mlflow_model = mlflow_model or Model()
        mlflow_model.add_flavor(
            FLAVOR_NAME,
            data=f"data/{MODEL_DIR}",
            sweeplab_version=versions()["sweeplab"],
            architecture=description.architecture,
            task=description.task,
        )
        mlflow.pyfunc.save_model(
            str(path),
            loader_module=__name__,
            data_path=str(data),
            mlflow_model=mlflow_model,
            signature=_signature(input_example, output_example, description.resolution_invariant),
            input_example=input_example,
            # The loader is sweeplab's; listed so that pip requirements need no inference (it loads the model).
            pip_requirements=[f"{name.replace('_', '-')}=={versions()[name].split('+')[0]}" for name in _REQUIREMENTS],
        )


def _signature(inputs: np.ndarray, outputs: np.ndarray, resolution_invariant: bool) -> Any:
    """Float32 tensors, any batch size; any grid when the architecture is resolution invariant."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(example: np.ndarray, grid_free: bool) -> Schema:
        grid = tuple(-1 if grid_free else size for size in example.shape[2:])
        return Schema([TensorSpec(np.dtype(np.float32), (-1, example.shape[1], *grid))])

    same_grid = outputs.shape[2:] == inputs.shape[2:]
    return ModelSignature(spec(inputs, resolution_invariant), spec(outputs, resolution_invariant and same_grid))


def log_mlflow_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    checkpoint: Path,
    description: ModelDescription,
    input_example: np.ndarray,
) -> LoggedModel:
    """Log the MLflow Model of ``checkpoint`` as a logged model of run ``run_id`` (``runs:/<run id>/mlflow_model``)
    through ``client`` (no fluent state: safe beside other trials in flight)."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    logged = client.create_logged_model(experiment_id, name=MLFLOW_MODEL_NAME, source_run_id=run_id)
    with tempfile.TemporaryDirectory(prefix="sweeplab-mlflow-model-") as folder:
        path = Path(folder) / MLFLOW_MODEL_NAME
        mlflow_model = Model(
            artifact_path=logged.artifact_location, run_id=run_id, model_id=logged.model_id, model_uuid=logged.model_id
        )
        save_mlflow_model(path, checkpoint, description, input_example, mlflow_model)
        client.log_model_artifacts(logged.model_id, str(path))
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged


def model_folder(path: Path) -> Path:
    """The folder with the checkpoint and its description in the MLflow Model at ``path``."""
    from mlflow.models import Model

    flavors = Model.load(str(path)).flavors
    if FLAVOR_NAME not in flavors:
        raise ValueError(f"not a sweeplab model (flavours: {', '.join(flavors)})")
    return path / flavors[FLAVOR_NAME]["data"]


class _PhysicalPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict`` takes an array (batch, channels, *grid) in physical
    units and returns the outputs in physical units; ``get_raw_model`` is the torch module."""

    def __init__(self, module: PhysicalModel) -> None:
        self.module = module

    def get_raw_model(self) -> PhysicalModel:
        return self.module

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.module.predict(data)


def _load_pyfunc(data_path: str) -> _PhysicalPyfunc:
    """The ``python_function`` flavour's loader (``loader_module``)."""
    from sweeplab.serving._module import rebuild

    folder = Path(data_path)
    description = ModelDescription.from_json((folder / DESCRIPTION_FILE).read_text())
    return _PhysicalPyfunc(rebuild(description, folder / CHECKPOINT_FILE))
