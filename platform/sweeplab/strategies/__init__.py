"""Training strategies: how a trial of a study is trained (``trial_trainer``). A trainer takes one
``sweeplab.training.TrialContext`` and returns a ``TrialResult``: plain (no hyperparameters), with sampled
regularisation hyperparameters held constant, or one Self-Tuning Network run; ``replay_run`` retrains with the
schedule a self-tuning run recorded. The Optuna samplers and pruners are ``sweeplab.search``'s."""

from sweeplab.strategies._self_tuning import (
    ReplayOutcome,
    Trainer,
    replay_run,
    train_constant,
    train_scheduled,
    train_self_tuning,
    trial_trainer,
)

__all__ = [
    "ReplayOutcome",
    "Trainer",
    "replay_run",
    "train_constant",
    "train_scheduled",
    "train_self_tuning",
    "trial_trainer",
]
