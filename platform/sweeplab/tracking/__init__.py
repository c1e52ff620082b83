"""Tracking: MLflow runs for studies and trials, with buffered metric writes."""

from sweeplab.tracking._mlflow import MetricBuffer, TrackedRun, Tracker, artifact_location, quiet_mlflow_logs

__all__ = ["MetricBuffer", "TrackedRun", "Tracker", "artifact_location", "quiet_mlflow_logs"]
