"""The transfer stage of strategy transfer (muTransfer, Tensor Programs V): after the search at the proxy width,
each architecture's best configuration trained at every target width with the hyperparameters found.

The search's trials are ordinary trials at ``transfer.proxy`` (the checker sets the model's ``transfer.parameter``
to it). Target runs are child runs of the study (``TRANSFER_ROLE``, ``TRANSFER_OF_TAG`` naming the proxy trial,
``TRANSFER_TARGET_TAG`` the width), not Optuna trials: the sampler and the budget never see them. Targets go in the
outer loop, narrowest first, so a stage cut short has trained every architecture at the widths it reached; a
resumed study skips the (trial, target) pairs whose run finished.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sweeplab.run._confirm import StageRun, run_stage

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from sweeplab.run._session import StudyRunner


def run_transfer(runner: StudyRunner, optuna_study: optuna.Study) -> bool:
    """Train the transfer targets that have not finished yet; True when the study was interrupted meanwhile."""
    from optuna.trial import FixedTrial

    study = runner.study
    transfer = study.spec.transfer
    assert transfer is not None

    def runs(best: dict[str, FrozenTrial]) -> Iterable[StageRun]:
        done = runner.recorder.finished_transfers()
        for target in sorted(transfer.targets):
            for key, trial in best.items():
                if (trial.number, target) in done:
                    continue
                proxy_plan = study.sample(FixedTrial(trial.params, trial.number))
                plan = dataclasses.replace(
                    proxy_plan, model_params={**proxy_plan.model_params, transfer.parameter: target}
                )
                yield StageRun(
                    study,
                    plan,
                    f"transferring {key} (trial {trial.number}) to {transfer.parameter} {target}",
                    functools.partial(runner.recorder.open_transfer_run, plan, trial.number, target),
                    f"transfer-{trial.number}-{target}",
                )

    return run_stage(runner, optuna_study, "transfer", runs)
