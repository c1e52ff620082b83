"""sweeplab: experiment tracking and hyperparameter tuning for scientific machine learning.

A study is one YAML file (see ``sweeplab.spec``); ``run_study`` drives Optuna, trains each trial with
PyTorch Lightning and records everything in MLflow; ``load_model`` gives back a best model (a run id,
``runs:/``, ``models:/<study>@best``) as a torch module in physical units. Importing this package is cheap: the
heavy libraries load when a study runs or a model loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Study", "StudyError", "__version__", "load_model", "load_study", "run_study"]

if TYPE_CHECKING:
    from sweeplab.run import run_study
    from sweeplab.serving import load_model
    from sweeplab.spec import Study, StudyError, load_study


def __getattr__(name: str) -> Any:
    if name == "run_study":
        from sweeplab.run import run_study

        return run_study
    if name == "load_model":
        from sweeplab.serving import load_model

        return load_model
    if name in ("Study", "StudyError", "load_study"):
        import sweeplab.spec

        return getattr(sweeplab.spec, name)
    raise AttributeError(f"module 'sweeplab' has no attribute {name!r}")
