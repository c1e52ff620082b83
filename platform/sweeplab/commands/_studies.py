"""``sweeplab studies``: every study in an Optuna storage, with trial counts by state and the best value."""

from __future__ import annotations

import sys

from sweeplab.commands._exit import EXIT_FAILED, EXIT_OK


def studies_command(storage: str) -> int:
    from sweeplab.run._storage import storage_exists, storage_for_reading

    if not storage_exists(storage):
        print(f"no study storage at {storage} (run a study first)", file=sys.stderr)
        return EXIT_FAILED
    import optuna
    from optuna.trial import TrialState
    from rich.console import Console
    from rich.table import Table

    from sweeplab.record import MODEL_ATTR, best_trials
    from sweeplab.run._display import format_value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = Table(title=f"studies in {storage}", title_justify="left")
    table.add_column("study", overflow="fold")
    table.add_column("direction")
    for column in ("complete", "pruned", "failed", "running"):
        table.add_column(column, justify="right")
    for column in ("best", "model", "trial"):
        table.add_column(column, no_wrap=True)
    readable = storage_for_reading(storage)
    for summary in optuna.get_all_study_summaries(readable, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=readable)
        trials = study.get_trials(deepcopy=False)
        counts = {state: sum(1 for t in trials if t.state == state) for state in TrialState}
        best = next(iter(best_trials(study)), None)
        table.add_row(
            summary.study_name,
            ", ".join(d.name.lower() for d in study.directions),
            str(counts[TrialState.COMPLETE]),
            str(counts[TrialState.PRUNED]),
            str(counts[TrialState.FAIL]),
            str(counts[TrialState.RUNNING]),
            format_value(best.values if best and len(best.values) > 1 else (best.value if best else None)),
            str(best.user_attrs.get(MODEL_ATTR, "")) if best else "",
            str(best.number) if best else "",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 120  # a pipe or a file gets the whole table, not 80 truncated columns
    console.print(table)
    return EXIT_OK
