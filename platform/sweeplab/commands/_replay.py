"""``sweeplab replay``: train a fresh plain model with the schedule a self-tuning run recorded."""

from __future__ import annotations

import sys

from sweeplab.commands._exit import EXIT_INVALID, EXIT_OK


def replay_command(run_id: str, tracking_uri: str) -> int:
    from sweeplab.run._storage import storage_exists
    from sweeplab.strategies import replay_run

    if not storage_exists(tracking_uri):  # opening a missing SQLite file would create an empty store
        print(f"error: no tracking store at {tracking_uri}, so no run {run_id!r}", file=sys.stderr)
        return EXIT_INVALID
    try:
        outcome = replay_run(run_id, tracking_uri)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    original = "-" if outcome.self_tuning_value is None else f"{outcome.self_tuning_value:.6g}"
    print(f"{outcome.metric}: self-tuning run {original}, replayed schedule {outcome.replay_value:.6g}")
    print(f"replay run: {outcome.replay_run_id}")
    return EXIT_OK
