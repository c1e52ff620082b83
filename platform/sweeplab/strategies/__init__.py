"""Search strategies: Optuna samplers and pruners built from a study's spec."""

from sweeplab.strategies._optuna import build_pruner, build_sampler

__all__ = ["build_pruner", "build_sampler"]
