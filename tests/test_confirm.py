"""The confirmation stage: each architecture's best trained again over fresh paired seeds after the search (a real
study end to end, resumed), the budget untouched by it, and the statistics ``sweeplab compare`` reports, checked
against scipy on fixed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import TINY_STUDY, write_study
from mlflow.tracking import MlflowClient
from scipy import stats

from sweeplab.cli import main
from sweeplab.compare._confirm import confirmation, holm, paired_p_value, t_interval
from sweeplab.compare._records import ConfirmRecord
from sweeplab.record import (
    CONFIRM_METRIC_TAG,
    CONFIRM_OF_TAG,
    CONFIRM_ROLE,
    MODEL_TAG,
    PARENT_RUN_ATTR,
    PARENT_RUN_TAG,
    ROLE_TAG,
    SEED_PARAM,
    finished_trials,
)
from sweeplab.run import run_study
from sweeplab.spec import StudyError, load_study

CONFIRMED_STUDY = """\
name: confirmed
objective: {metric: val_rel_l2, direction: minimize}
data:
  name: darcy
  params: {fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8, seed: 0}
models:
  - name: fno2d
    params: {n_layers: 2, padding: 0, projection_width: 16, modes: 3}
    search: {width: {choices: [4, 8]}}
  - name: unet2d
    preset: small
search: {lr: 5.0e-3, batch_size: 8}
trainer: {max_epochs: 1, num_threads: 1, seed: 7}
sampler: random
budget: {n_trials: 3}
confirm: {seeds: 3, metric: test_rel_l2}
"""


# -- the statistics, against scipy on fixed numbers ---------------------------------------------------------------
def test_t_interval_is_scipys_95_percent_interval_of_the_mean() -> None:
    values = [0.031, 0.034, 0.029, 0.036]
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(0.0325)
    assert (low, high) == pytest.approx(expected, rel=1e-12)
    # Hand check: s = 0.003109, t(0.975, 3) = 3.182: half-width 0.004948.
    assert high - mean == pytest.approx(0.004948, abs=1e-6)
    assert t_interval([0.5]) == (0.5, None, None)


def test_paired_p_value_is_the_two_sided_paired_t_test() -> None:
    winner = [0.030, 0.032, 0.029, 0.033]
    other = [0.034, 0.035, 0.030, 0.037]
    assert paired_p_value(other, winner) == pytest.approx(stats.ttest_rel(other, winner).pvalue, rel=1e-12)
    # Differences 4, 3, 1, 4 (x 1e-3): mean 3, s = 1.414, t = 4.243 on 3 degrees of freedom.
    assert paired_p_value(other, winner) == pytest.approx(2 * stats.t.sf(3 / (np.sqrt(2) / 2), 3), rel=1e-9)
    assert paired_p_value([1.0, 2.0], [1.0, 2.0]) == 1.0  # identical: nothing tells them apart
    assert paired_p_value([1.0], [2.0]) is None


def test_holm_adjustment() -> None:
    # Sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> kept monotone: 0.03, 0.06, 0.06.
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def _records(values: dict[str, list[float]], direction: str = "minimize", trial: int = 0) -> list[ConfirmRecord]:
    return [
        ConfirmRecord(name, trial + index, seed, "test_rel_l2", direction, value, started=1000 * trial + seed)
        for index, (name, row) in enumerate(values.items())
        for seed, value in enumerate(row, start=1)
    ]


def test_confirmation_ranks_by_mean_and_tests_the_winner_against_each_other_architecture() -> None:
    values = {
        "fno": [0.030, 0.032, 0.029, 0.033],
        "unet": [0.034, 0.035, 0.030, 0.037],  # worse on every seed, consistently
        "lsm": [0.031, 0.028, 0.036, 0.030],  # worse on average, but not consistently
    }
    found = confirmation("darcy", _records(values))
    assert found is not None
    assert [c.architecture for c in found.architectures] == ["fno", "lsm", "unet"]
    assert found.winner == "fno" and found.seeds == [1, 2, 3, 4]
    tests = {t.architecture: t for t in found.tests}
    raw = {name: stats.ttest_rel(values[name], values["fno"]).pvalue for name in ("unet", "lsm")}
    assert tests["unet"].p_value == pytest.approx(raw["unet"]) and tests["lsm"].p_value == pytest.approx(raw["lsm"])
    assert tests["unet"].p_holm == pytest.approx(2 * raw["unet"])  # the smaller p-value of two, times two
    assert tests["unet"].mean_difference == pytest.approx(0.003)
    assert tests["unet"].significant and not tests["lsm"].significant
    assert not found.significant  # the winner does not beat lsm significantly


def test_confirmation_pairs_on_shared_seeds_maximises_and_keeps_the_latest_confirmed_trial() -> None:
    stale = _records({"cnn": [0.1, 0.1]}, "maximize", trial=0)  # an earlier best of cnn, confirmed before
    current = _records({"cnn": [0.90, 0.92, 0.91], "mlp": [0.80, 0.81]}, "maximize", trial=5)
    found = confirmation("digits", stale + current)
    assert found is not None
    assert found.winner == "cnn" and found.architectures[0].trial == 5
    assert found.architectures[0].mean == pytest.approx(0.91)
    (test,) = found.tests
    assert test.n_pairs == 2  # mlp has no seed 3
    assert test.p_value == pytest.approx(stats.ttest_rel([0.80, 0.81], [0.90, 0.92]).pvalue)
    assert confirmation("none", []) is None


# -- the spec ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("confirm", "message"),
    [
        ("{seeds: 3, metric: val_rel_l2}", "test split"),
        ("{seeds: 3, metric: test_accuracy}", "not logged by fno2d"),
        ("{seeds: 1, metric: test_rel_l2}", "greater than or equal to 2"),
    ],
)
def test_confirm_block_is_checked(tmp_path: Path, confirm: str, message: str) -> None:
    path = write_study(tmp_path, TINY_STUDY + f"confirm: {confirm}\n")
    with pytest.raises(StudyError) as raised:
        load_study(path)
    assert "confirm" in str(raised.value) and message in str(raised.value)


# -- a real study, end to end ---------------------------------------------------------------------------------------
def _confirm_runs(tracking_uri: str, storage: str) -> list:
    parent = optuna.load_study(study_name="confirmed", storage=storage).user_attrs[PARENT_RUN_ATTR]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("confirmed")
    query = f"tags.`{PARENT_RUN_TAG}` = '{parent}' AND tags.`{ROLE_TAG}` = '{CONFIRM_ROLE}'"
    return client.search_runs([experiment.experiment_id], query)


@pytest.mark.usefixtures("one_torch_thread")
def test_study_confirms_each_best_over_paired_seeds_outside_the_budget_and_resumes(tmp_path: Path, capsys) -> None:
    study_file = write_study(tmp_path, CONFIRMED_STUDY)
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)

    trials = optuna.load_study(study_name="confirmed", storage=storage).get_trials()
    assert outcome.finished == 3 and len(trials) == 3 and finished_trials(trials) == 3  # the budget, exactly
    best = {}
    for trial in trials:
        key = trial.user_attrs["model"]
        if key not in best or trial.value < best[key].value:
            best[key] = trial
    runs = _confirm_runs(tracking_uri, storage)
    assert len(runs) == 6 and {run.info.status for run in runs} == {"FINISHED"}
    pairs = {(run.data.tags[MODEL_TAG], int(run.data.params[SEED_PARAM])) for run in runs}
    assert pairs == {(key, seed) for key in ("fno2d", "unet2d") for seed in (8, 9, 10)}  # seed 7 + 1, + 2, + 3
    for run in runs:
        key = run.data.tags[MODEL_TAG]
        assert run.data.tags[CONFIRM_OF_TAG] == str(best[key].number)  # its architecture's best trial
        if key == "fno2d":  # the searched value of the best trial
            assert run.data.params["model.width"] == str(best[key].params["fno2d.width"])
        assert run.data.tags[CONFIRM_METRIC_TAG] == "test_rel_l2" and "test_rel_l2" in run.data.metrics
    fno_values = {run.data.metrics["test_rel_l2"] for run in runs if run.data.tags[MODEL_TAG] == "fno2d"}
    assert len(fno_values) == 3  # three seeds, three different models

    # A confirmation run cut short is trained again on resume; the finished ones and the trials are not.
    cut = next(run for run in runs if run.data.tags[MODEL_TAG] == "unet2d" and run.data.params[SEED_PARAM] == "9")
    MlflowClient(tracking_uri).set_terminated(cut.info.run_id, "KILLED")
    run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)
    assert len(optuna.load_study(study_name="confirmed", storage=storage).get_trials()) == 3
    after = _confirm_runs(tracking_uri, storage)
    assert len(after) == 7
    new = [run for run in after if run.info.run_id not in {r.info.run_id for r in runs}]
    assert [(r.data.tags[MODEL_TAG], r.data.params[SEED_PARAM], r.info.status) for r in new] == [
        ("unet2d", "9", "FINISHED")
    ]

    # compare reports the confirmation: JSON numbers, the table, the HTML report.
    stores = ["--storage", storage, "--tracking-uri", tracking_uri]
    capsys.readouterr()
    assert main(["compare", str(study_file), *stores, "--format", "json"]) == 0
    reported = json.loads(capsys.readouterr().out)["confirmations"]["confirmed"]
    assert reported["seeds"] == [8, 9, 10] and reported["test"] == "two-sided paired t-test, Holm-adjusted"
    by_name = {a["architecture"]: a for a in reported["architectures"]}
    assert sorted(by_name["fno2d"]["values"].values()) == pytest.approx(sorted(fno_values))
    assert by_name["fno2d"]["mean"] == pytest.approx(np.mean(list(fno_values)))
    assert reported["winner"] == reported["architectures"][0]["architecture"]
    assert main(["compare", str(study_file), *stores]) == 0
    table = capsys.readouterr().out
    assert "confirmation, test_rel_l2 (minimize) over seeds 8, 9, 10" in table and "p (Holm)" in table
    assert main(["compare", str(study_file), *stores, "--format", "html", "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report-confirmed.html").read_text()
    assert "Confirmation over seeds" in report and "paired t-test" in report
