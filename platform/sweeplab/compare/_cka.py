"""Representation similarity for representation studies: linear CKA (Kornblith et al. 2019, and its debiased
variant) between the encoder outputs of each architecture's best model on the same test samples.

The models are rebuilt from what the runner logs on a trial that was the best of its architecture (``model.json``
and the Lightning checkpoint, read through MLflow's artifact API); the study from the parent run's resolved YAML."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sweeplab.record import (
    CHECKPOINT_ARTIFACT,
    CHECKPOINT_FILE,
    DESCRIPTION_ARTIFACT,
    DESCRIPTION_FILE,
    MODEL_ATTR,
    MODEL_DIR,
    RESOLVED_STUDY_ARTIFACT,
    RUN_ATTR,
    ModelDescription,
)

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from sweeplab.compare._aggregate import Comparison
    from sweeplab.compare._records import StudyRecords
    from sweeplab.spec import Study

REPRESENTATION_TASKS = frozenset({"contrastive", "class_incremental", "stitching", "transfer_classification"})
"""Registry tasks whose models expose ``encode(x)``, the representation compared."""
CKA_SAMPLES = 500
"""The first test samples the representations are computed on: enough for a stable linear CKA, quick on a CPU."""


@dataclass(frozen=True)
class CkaMatrix:
    """CKA between the best models of a study's architectures; ``note`` says what is missing and why."""

    study: str
    architectures: list[str]
    """Those whose best trial has a checkpoint, in the comparison's order; rows and columns of the matrices."""
    trials: list[int]
    """The best trial of each (first objective), whose weights were loaded."""
    linear: list[list[float | None]]
    debiased: list[list[float | None]]
    """Debiased CKA (unbiased HSIC): no upward drift when the samples are few for the width; None where undefined."""
    n_samples: int
    note: str = ""


def representation_similarity(
    records: StudyRecords, architectures: Sequence[str], max_samples: int = CKA_SAMPLES
) -> CkaMatrix | None:
    """The CKA matrix of a representation study (None for any other study), architectures in the given order."""
    from mlflow.exceptions import MlflowException

    from sweeplab.spec import StudyError, parse_study

    with tempfile.TemporaryDirectory(prefix="sweeplab-cka-") as folder:
        try:
            text = Path(records.client.download_artifacts(records.parent_run_id, RESOLVED_STUDY_ARTIFACT, folder))
            study = parse_study(text.read_text(), f"run {records.parent_run_id}: {RESOLVED_STUDY_ARTIFACT}")
        except (MlflowException, OSError, StudyError) as error:
            return _without_matrix(records.name, f"the study could not be rebuilt from its parent run: {error}")
        if study.task.name not in REPRESENTATION_TASKS:
            return None
        best = _best_trial_per_architecture(records)
        loaded: list[tuple[str, int, Path]] = []
        missing = []
        for name in [name for name in architectures if name in best]:
            number, run_id = best[name]
            if not _has_checkpoint(records, run_id):
                missing.append(name)
                continue
            destination = Path(folder) / str(number)
            destination.mkdir()
            local = records.client.download_artifacts(run_id, MODEL_DIR, str(destination))
            loaded.append((name, number, Path(local)))
        note = _missing_note(missing)
        if len(loaded) < 2:
            have = ", ".join(name for name, _, _ in loaded) or "none"
            return _without_matrix(
                records.name, f"CKA needs the best models of two architectures (have: {have}). {note}"
            )
        features = _representations(study, [path for _, _, path in loaded], max_samples)
    return CkaMatrix(
        study=records.name,
        architectures=[name for name, _, _ in loaded],
        trials=[number for _, number, _ in loaded],
        linear=_finite(features, debiased=False),
        debiased=_finite(features, debiased=True) if features[0].shape[0] >= 4 else [],
        n_samples=features[0].shape[0],
        note=note,
    )


def _without_matrix(study: str, note: str) -> CkaMatrix:
    return CkaMatrix(study, [], [], [], [], 0, note.strip())


def _best_trial_per_architecture(records: StudyRecords) -> dict[str, tuple[int, str]]:
    """architecture -> (trial number, run id) of its best complete trial on the first objective; ties go to the
    earlier trial, as in the runner, which logs a checkpoint only for a strictly better one."""
    sign = 1.0 if records.study.directions[0].name == "MINIMIZE" else -1.0
    best: dict[str, tuple[float, int, str]] = {}
    for trial in records.study.get_trials(deepcopy=False):
        run_id = trial.user_attrs.get(RUN_ATTR)
        if trial.state.name != "COMPLETE" or not trial.values or run_id is None:
            continue
        name = str(trial.user_attrs.get(MODEL_ATTR))
        key = (sign * trial.values[0], trial.number, run_id)
        if name not in best or key < best[name]:
            best[name] = key
    return {name: (number, run_id) for name, (_, number, run_id) in best.items()}


def _has_checkpoint(records: StudyRecords, run_id: str) -> bool:
    paths = {artifact.path for artifact in records.client.list_artifacts(run_id, MODEL_DIR)}
    return {CHECKPOINT_ARTIFACT, DESCRIPTION_ARTIFACT} <= paths


def _missing_note(missing: Sequence[str]) -> str:
    if not missing:
        return ""
    return (
        f"No checkpoint on the best trial of {', '.join(missing)} (studies run before sweeplab logged each "
        "architecture's best keep only the overall best's)."
    )


def _representations(study: Study, model_folders: Sequence[Path], max_samples: int) -> list[np.ndarray]:
    """Each model's ``encode`` output on the first ``max_samples`` test samples, in eval mode."""
    import torch

    from sweeplab.data import load_dataset

    data = load_dataset(study.spec.data.name, study.data_params, data_dir=study.spec.data.dir)
    x = torch.as_tensor(data.x_test[:max_samples])
    features = []
    for folder in model_folders:
        model = _rebuild(study, folder)
        with torch.no_grad():
            features.append(model.encode(x).reshape(x.shape[0], -1).double().numpy())
    return features


def _rebuild(study: Study, folder: Path) -> nn.Module:
    """The architecture from ``model.json`` with the task's weights (its ``model.`` state) from the checkpoint."""
    import torch

    from sweeplab_modules.registry import build_model

    description = ModelDescription.from_json((folder / DESCRIPTION_FILE).read_text())
    model = build_model(description.architecture, *study.data_channels, **description.params)
    state = torch.load(folder / CHECKPOINT_FILE, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict(
        {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
    )
    return model.eval()


def _finite(features: list[np.ndarray], debiased: bool) -> list[list[float | None]]:
    from sweeplab_modules.representations.cka import cka_matrix

    matrix = cka_matrix(features, debiased=debiased)
    return [[float(v) if math.isfinite(v) else None for v in row] for row in matrix]


def with_cka(comparison: Comparison, all_records: Sequence[StudyRecords], max_samples: int = CKA_SAMPLES) -> Comparison:
    """``comparison`` with the CKA matrix of each representation study."""
    matrices = {}
    for records in all_records:
        matrix = representation_similarity(records, comparison.architectures, max_samples)
        if matrix is not None:
            matrices[records.name] = matrix
    return dataclasses.replace(comparison, cka=matrices)
