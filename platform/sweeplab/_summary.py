"""``sweeplab studies``: every study in an Optuna storage, with trial counts by state and the best value."""

from __future__ import annotations

import sys
from pathlib import Path


def print_studies(storage: str) -> int:
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        print(f"no study storage at {storage} (run a study first)", file=sys.stderr)
        return 1
    import optuna
    from optuna.trial import TrialState
    from rich.console import Console
    from rich.table import Table

    from sweeplab._console import format_value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = Table(title=f"studies in {storage}")
    for column in ("study", "direction", "complete", "pruned", "failed", "running", "best", "model", "trial"):
        table.add_column(column, justify="right" if column in ("complete", "pruned", "failed", "running") else "left")
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        counts = {state: sum(1 for t in trials if t.state == state) for state in TrialState}
        best = _best_trials(study)
        table.add_row(
            summary.study_name,
            ", ".join(d.name.lower() for d in study.directions),
            str(counts[TrialState.COMPLETE]),
            str(counts[TrialState.PRUNED]),
            str(counts[TrialState.FAIL]),
            str(counts[TrialState.RUNNING]),
            format_value(best.values if best and len(best.values) > 1 else (best.value if best else None)),
            str(best.user_attrs.get("model", "")) if best else "",
            str(best.number) if best else "",
        )
    Console().print(table)
    return 0


def _best_trials(study):  # type: ignore[no-untyped-def]
    from sweeplab._runner import _best

    best = _best(study)
    return best[0] if best else None
