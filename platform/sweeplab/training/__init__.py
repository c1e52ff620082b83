"""One trial's training: the architecture in its task, fitted and tested with Lightning into the trial's run.

A trainer is a function of one ``TrialContext`` returning a ``TrialResult``; ``train_trial`` is the plain one and
``sweeplab.strategies`` holds the others. ``fit_task`` is where every trainer ends. The Lightning callbacks the engine
puts on every trial live here too, so that a trainer sees everything a trial's training is made of.
"""

from sweeplab.training._device import training_on, trial_gpu
from sweeplab.training._trial import (
    TrialContext,
    TrialResult,
    build_seeded_model,
    build_task,
    fit_task,
    quiet_lightning,
    train_trial,
)

__all__ = [
    "TrialContext",
    "TrialResult",
    "build_seeded_model",
    "build_task",
    "fit_task",
    "quiet_lightning",
    "train_trial",
    "training_on",
    "trial_gpu",
]
