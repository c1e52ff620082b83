"""The engine: runs a study's trials against its shared Optuna storage and records them in MLflow.

``run_study`` runs (or resumes) a study until its budget; ``StudyRunner`` is the same with its session and trial
loop apart (``sweeplab worker --create-only`` opens the session only). Importing this package imports neither
torch nor Lightning nor MLflow.
"""

from sweeplab.run._session import StudyInterruptedError, StudyOutcome, StudyRunner, run_study

__all__ = ["StudyInterruptedError", "StudyOutcome", "StudyRunner", "run_study"]
