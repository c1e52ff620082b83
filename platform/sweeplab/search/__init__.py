"""Search: the Optuna samplers and pruners a study names, built from its spec (the spec's checker builds them too,
to check their arguments against the real constructors)."""

from sweeplab.search._samplers import build_pruner, build_sampler

__all__ = ["build_pruner", "build_sampler"]
