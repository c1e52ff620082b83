"""Architectures and Lightning tasks for sweeplab. Importing this package does not import torch."""

from sweeplab_modules.registry import MODELS, TASKS, ModelEntry, TaskEntry, build_model

__all__ = ["MODELS", "TASKS", "ModelEntry", "TaskEntry", "build_model"]
