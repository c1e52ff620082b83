"""Search strategies: Optuna samplers and pruners built from a study's spec."""

from sweeplab.strategies._optuna import build_pruner, build_sampler
from sweeplab.strategies._self_tuning import replay_run, trial_trainer

__all__ = ["build_pruner", "build_sampler", "replay_run", "trial_trainer"]
