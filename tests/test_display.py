"""The live progress display: the study's time left and a long epoch's batches, rendered by a real rich console."""

from __future__ import annotations

import io
import time

from rich.console import Console

from sweeplab.run._display import StudyProgress


def _screen(progress: StudyProgress) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(progress._progress.make_tasks_table(progress._progress.tasks))
    return console.file.getvalue()


def test_the_study_shows_its_time_left_and_a_trial_its_batches() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    with StudyProgress(console, "quickstart", n_trials=8, max_epochs=15) as progress:
        progress.set_finished(2)  # a resumed study: two trials done before, not part of the rate
        assert "eta -:--:--" in _screen(progress)
        progress.trial_started(2, "fno2d")
        progress.batch(2, epoch=3, done=40, total=100, model="fno2d")
        screen = _screen(progress)
        assert "trial 2 fno2d epoch 4 batch 40/100" in screen
        time.sleep(0.2)
        progress.trial_finished(2, finished=3, line="trial   2 COMPLETE fno2d 0.1", best="best 0.1")
        # One trial in this session so far: the five left take about five times as long as it did.
        study_row = next(line for line in _screen(progress).splitlines() if "quickstart" in line)
        hours, minutes, seconds = study_row.split("eta ")[1].split()[0].split(":")
        assert 0 < int(hours) * 3600 + int(minutes) * 60 + int(seconds) <= 5 * 60
