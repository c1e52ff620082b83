"""Optuna samplers and pruners by the names a study uses."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from sweeplab.spec._schema import PrunerSpec, SamplerSpec

_SINGLE_OBJECTIVE = {"cmaes"}


def build_sampler(spec: SamplerSpec, seed: int, n_objectives: int) -> optuna.samplers.BaseSampler:
    """The sampler ``spec`` names, seeded with the study seed unless its kwargs give one.

    ``grid`` is Optuna's brute-force sampler: unlike GridSampler it walks conditional spaces (each architecture's
    own dimensions), so one grid study can compare architectures.
    """
    import optuna.samplers as samplers
    from optuna.exceptions import ExperimentalWarning

    if spec.name in _SINGLE_OBJECTIVE and n_objectives > 1:
        raise ValueError(f"{spec.name} optimises a single objective; use tpe, nsga2, gp, qmc or random")
    classes: dict[str, Any] = {
        "tpe": samplers.TPESampler,
        "random": samplers.RandomSampler,
        "gp": samplers.GPSampler,
        "cmaes": samplers.CmaEsSampler,
        "qmc": samplers.QMCSampler,
        "grid": samplers.BruteForceSampler,
        "nsga2": samplers.NSGAIISampler,
    }
    with warnings.catch_warnings():
        # Optuna flags some samplers (brute force, GP) as experimental; that is no news for the user here.
        warnings.simplefilter("ignore", category=ExperimentalWarning)
        return classes[spec.name](**{"seed": seed, **spec.kwargs})


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """The pruner ``spec`` names (``none`` never prunes)."""
    import optuna.pruners as pruners

    classes: dict[str, Any] = {
        "none": pruners.NopPruner,
        "median": pruners.MedianPruner,
        "hyperband": pruners.HyperbandPruner,
        "successive_halving": pruners.SuccessiveHalvingPruner,
    }
    return classes[spec.name](**spec.kwargs)
