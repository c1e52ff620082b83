"""`sweeplab compare`: the aggregation maths on studies with known values, recorded through the real Optuna and
MLflow APIs exactly as the runner records them; every output format; the report on a study that really ran."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass

import numpy as np
import optuna
import pytest
from conftest import TINY_CONTRASTIVE_STUDY, TINY_STUDY, write_study
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from sweeplab.cli import main
from sweeplab.compare import (
    CompareError,
    ParetoPoint,
    StudySource,
    cka_section,
    compare,
    load_records,
    pareto_front,
    render_csv,
    render_json,
    render_markdown,
    render_table,
    report_name,
    study_plots,
    with_cka,
)
from sweeplab.record import INTERRUPTED_ATTR, PARENT_RUN_ATTR, RUN_ATTR
from sweeplab.run import run_study
from sweeplab.spec import load_study
from sweeplab.tracking import Tracker


@dataclass(frozen=True)
class Recorded:
    """A trial to record: its architecture, outcome and costs."""

    architecture: str
    value: float | None = None
    state: str = "COMPLETE"
    n_params: int = 1000
    fit_seconds: float = 10.0
    epochs: int = 5
    width: int = 8
    lr: float | None = None
    """None: a learning rate of its own, 1e-3 x (trial number + 1)."""
    seed: int = 0
    interrupted: bool = False


def record_study(
    stores: tuple[str, str], name: str, trials: list[Recorded], direction: str = "minimize", metric: str = "val_rel_l2"
) -> StudySource:
    """Write a study as the runner does: an Optuna study tied to a parent MLflow run, one child run per trial with
    its parameters, per-epoch curves, parameter count and training time."""
    storage, tracking_uri = stores
    tracker = Tracker(tracking_uri, name)
    parent = tracker.open_run(name, {"sweeplab.role": "study", "sweeplab.study": name})
    tracker.log(parent, params={"objective": f"{direction} {metric}"})
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    study.set_user_attr(PARENT_RUN_ATTR, parent)
    architectures = sorted({t.architecture for t in trials})
    for number, trial in enumerate(trials):
        tags = {"sweeplab.role": "trial", "sweeplab.trial": str(number), "sweeplab.model": trial.architecture}
        run = tracker.open_run(f"trial-{number:03d}-{trial.architecture}", tags, parent_run_id=parent)
        tracker.log(run, params={"n_params": trial.n_params, "seed": trial.seed})
        complete = trial.state == "COMPLETE"
        for epoch in range(trial.epochs if complete else 1):
            # A curve that ends on the trial's value: the last epoch is what the runner reports.
            last = trial.value if complete else 1.0
            tracker.log(run, metrics={metric: last * (trial.epochs - epoch), "train_loss": last}, step=epoch)
        if complete:
            tracker.log(
                run,
                metrics={"test_rel_l2": 2 * trial.value, "fit_seconds": trial.fit_seconds, "epochs": trial.epochs},
                step=trial.epochs,
            )
        tracker.end_run(run, "FINISHED" if trial.state != "FAIL" else "FAILED", {"sweeplab.state": trial.state})
        params = {
            "model": trial.architecture,
            f"{trial.architecture}.width": trial.width,
            "lr": trial.lr or 1e-3 * (number + 1),
        }
        distributions = {
            "model": CategoricalDistribution(architectures),
            f"{trial.architecture}.width": IntDistribution(1, 1024),
            "lr": FloatDistribution(1e-5, 1.0, log=True),
        }
        user_attrs = {"model": trial.architecture, RUN_ATTR: run} | (
            {INTERRUPTED_ATTR: True} if trial.interrupted else {}
        )
        study.add_trial(
            create_trial(
                state=TrialState[trial.state],
                value=trial.value if complete else None,
                params=params,
                distributions=distributions,
                user_attrs=user_attrs,
            )
        )
    tracker.end_run(parent, "FINISHED")
    return StudySource(name, storage, tracking_uri)


# Darcy: fno with known values, a pruned trial, a real failure and an interrupted one; unet with a tie for best;
# mlp that never completed. Trial numbers are the list positions.
DARCY = [
    Recorded("fno", 0.30, n_params=1000, fit_seconds=10.0, epochs=5),  # 0
    Recorded("fno", 0.10, n_params=4000, fit_seconds=40.0, epochs=5),  # 1
    Recorded("unet", 0.15, n_params=3000, fit_seconds=30.0, epochs=10),  # 2
    Recorded("fno", 0.20, n_params=2000, fit_seconds=20.0, epochs=5),  # 3
    Recorded("fno", None, state="PRUNED"),  # 4
    Recorded("unet", 0.25, n_params=3000, fit_seconds=30.0, epochs=10),  # 5
    Recorded("fno", 0.40, n_params=8000, fit_seconds=80.0, epochs=5),  # 6
    Recorded("mlp", None, state="FAIL"),  # 7
    Recorded("fno", 0.50, n_params=500, fit_seconds=5.0, epochs=5),  # 8
    Recorded("unet", 0.15, n_params=3000, fit_seconds=30.0, epochs=10),  # 9
    Recorded("fno", None, state="FAIL"),  # 10
    Recorded("fno", None, state="FAIL", interrupted=True),  # 11
    Recorded("unet", None, state="PRUNED"),  # 12
    Recorded("fno", 0.60, n_params=500, fit_seconds=6.0, epochs=5),  # 13
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StudySource]:
    folder = tmp_path_factory.mktemp("compare")
    stores = (f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db")
    seeds = [Recorded("fno", v, lr=1e-3, seed=s) for s, v in enumerate([0.20, 0.24, 0.22])]
    seeds.append(Recorded("fno", 0.10, lr=1e-3, width=16))
    return {
        "darcy": record_study(stores, "darcy", DARCY),
        "burgers": record_study(stores, "burgers", [Recorded("fno", 0.05)]),
        "ns": record_study(stores, "ns", [Recorded("deeponet", 0.20), Recorded("deeponet", 0.30)]),
        "tie": record_study(stores, "tie", [Recorded("fno", 0.1), Recorded("unet", 0.1), Recorded("mlp", 0.2)]),
        "seeds": record_study(stores, "seeds", seeds),
        "accuracy": record_study(
            stores, "accuracy", [Recorded("fno", v) for v in (0.7, 0.9, 0.8)], direction="maximize", metric="acc"
        ),
    }


def _compare(sources: dict[str, StudySource], *names: str, top_k: int = 3, metric: str | None = None):
    return compare([load_records(sources[n], metric) for n in names], top_k=top_k)


def test_per_architecture_summary_of_known_values(sources) -> None:
    comparison = _compare(sources, "darcy")
    fno = comparison.summary("darcy", "fno")
    assert (fno.best_value, fno.best_trial, fno.n_params) == (0.10, 1, 4000)
    # top-3 = 0.10, 0.20, 0.30: median 0.20, IQR = 75th - 25th percentile = 0.25 - 0.15
    assert fno.median == pytest.approx(0.20) and fno.iqr == pytest.approx(0.10)
    assert (fno.spread_n, fno.spread_over) == (3, "top-k")
    assert (fno.complete, fno.pruned, fno.failed) == (6, 1, 1)  # the interrupted trial is not a failure
    assert fno.seconds_per_epoch == pytest.approx(3.0)  # median of 2, 8, 4, 16, 1, 1.2 s per epoch
    assert fno.best_params == {"width": 8, "lr": pytest.approx(2e-3)}  # prefix gone, model choice left out
    unet = comparison.summary("darcy", "unet")
    assert unet.seconds_per_epoch == pytest.approx(3.0)
    assert (unet.complete, unet.pruned, unet.failed) == (3, 1, 0)
    mlp = comparison.summary("darcy", "mlp")
    assert (mlp.best_value, mlp.median, mlp.iqr, mlp.failed, mlp.spread_n) == (None, None, None, 1, 0)
    assert comparison.ranks["darcy"] == {"fno": 1, "unet": 2}  # mlp never completed: no rank
    assert comparison.architectures == ["fno", "unet", "mlp"]


def test_ties_share_a_rank_and_the_earlier_trial_is_best(sources) -> None:
    unet = _compare(sources, "darcy").summary("darcy", "unet")
    assert (unet.best_value, unet.best_trial) == (0.15, 2)  # trial 9 ties; trial 2 came first
    assert unet.median == pytest.approx(0.15) and unet.iqr == pytest.approx(0.05)  # 0.15, 0.15, 0.25
    assert _compare(sources, "tie").ranks["tie"] == {"fno": 1, "unet": 1, "mlp": 3}


def test_a_study_with_one_trial(sources) -> None:
    fno = _compare(sources, "burgers", top_k=5).summary("burgers", "fno")
    assert (fno.best_value, fno.median, fno.iqr, fno.spread_n) == (0.05, 0.05, 0.0, 1)


def test_studies_with_no_common_architecture(sources) -> None:
    comparison = _compare(sources, "burgers", "ns")
    assert comparison.best_matrix() == {"fno": {"burgers": 0.05, "ns": None}, "deeponet": {"burgers": None, "ns": 0.2}}
    assert comparison.ranks == {"burgers": {"fno": 1}, "ns": {"deeponet": 1}}
    assert "deeponet" in render_table(comparison) and "| deeponet | - | 0.2 (1) |" in render_markdown(comparison)


def test_spread_is_over_seeds_where_a_configuration_was_repeated(sources) -> None:
    fno = _compare(sources, "seeds").summary("seeds", "fno")
    assert fno.best_value == 0.10  # the single-seed configuration holds the best run...
    # ...but the spread is that of the configuration repeated over seeds 0, 1, 2: 0.20, 0.24, 0.22
    assert (fno.spread_over, fno.spread_n) == ("seeds", 3)
    assert fno.median == pytest.approx(0.22) and fno.iqr == pytest.approx(0.02)


def test_maximised_metric_and_mixed_directions(sources) -> None:
    comparison = _compare(sources, "accuracy")
    fno = comparison.summary("accuracy", "fno")
    assert (comparison.metric, comparison.direction, fno.best_value, fno.best_trial) == ("acc", "maximize", 0.9, 1)
    assert fno.median == pytest.approx(0.8)
    with pytest.raises(CompareError, match="different metrics"):
        _compare(sources, "accuracy", "darcy")


def test_pareto_fronts_against_parameters_and_training_time(sources) -> None:
    fronts = _compare(sources, "darcy").pareto["darcy"]
    # cost 500: trial 8 (0.50) beats trial 13 (0.60); 8000 (trial 6, 0.40) is beaten by cheaper, better trials;
    # the two unet points at (3000, 0.15) are equal and both stay.
    assert [(p.trial, p.cost) for p in fronts["n_params"]] == [
        (8, 500),
        (0, 1000),
        (3, 2000),
        (2, 3000),
        (9, 3000),
        (1, 4000),
    ]
    assert [p.trial for p in fronts["fit_seconds"]] == [8, 0, 3, 2, 9, 1]
    maximised = pareto_front([ParetoPoint("s", "a", 0, 0.9, 2.0), ParetoPoint("s", "a", 1, 0.5, 1.0)], "maximize")
    assert [p.trial for p in maximised] == [1, 0]


def test_a_metric_other_than_the_objective_is_read_from_mlflow(sources) -> None:
    fno = _compare(sources, "darcy", metric="test_rel_l2").summary("darcy", "fno")
    assert (fno.best_value, fno.best_trial) == (pytest.approx(0.20), 1)
    with pytest.raises(CompareError, match="no run logged 'nope'"):
        load_records(sources["darcy"], "nope")


def test_plots_say_why_when_trials_are_too_few(sources) -> None:
    burgers = load_records(sources["burgers"])
    plots = {p.key: p for p in study_plots(burgers, compare([burgers]))}
    assert "needs at least 5" in plots["burgers-importances"].note
    assert "needs at least 2" in plots["burgers-parallel-fno"].note
    assert plots["burgers-history"].figure is not None and plots["burgers-pareto"].png.startswith(b"\x89PNG")
    darcy = load_records(sources["darcy"])
    plots = {p.key: p for p in study_plots(darcy, compare([darcy]))}
    assert plots["darcy-importances"].png.startswith(b"\x89PNG")  # fno has 6 complete trials, unet panel says why
    assert plots["darcy-learning-curves"].png.startswith(b"\x89PNG")
    assert plots["darcy-parallel-mlp"].note


# -- output formats --------------------------------------------------------------------------------------------
def test_table_fits_100_columns(sources) -> None:
    text = render_table(_compare(sources, "darcy", "burgers", "ns"))
    assert max(len(line) for line in text.splitlines()) <= 100
    row = next(line for line in text.splitlines() if line.split()[:2] == ["1", "fno"])
    assert row.split()[2:8] == ["0.1", "1", "0.2", "0.1", "top-3", "6/1/1"]
    assert "fno (trial 1): width=8, lr=0.002" in text


def test_markdown_pastes_as_tables(sources) -> None:
    text = render_markdown(_compare(sources, "darcy", "burgers"))
    lines = text.splitlines()
    header = lines.index("| rank | architecture | best | trial | median | IQR | over | C/P/F | params | s/epoch |")
    assert lines[header + 1].startswith("| --- |")
    assert lines[header + 2] == "| 1 | fno | 0.1 | 1 | 0.2 | 0.1 | top-3 | 6/1/1 | 4k | 3 |"
    assert "| architecture | darcy | burgers |" in lines and "| fno | 0.1 (1) | 0.05 (1) |" in lines


def test_csv_round_trips_the_numbers(sources) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_compare(sources, "darcy")))))
    fno = next(r for r in rows if r["architecture"] == "fno")
    assert float(fno["best_value"]) == 0.10 and float(fno["iqr"]) == pytest.approx(0.10) and fno["rank"] == "1"
    assert json.loads(fno["best_params"]) == {"lr": pytest.approx(2e-3), "width": 8}
    assert next(r for r in rows if r["architecture"] == "mlp")["best_value"] == ""


def test_json_has_matrix_ranks_and_fronts(sources) -> None:
    data = json.loads(render_json(_compare(sources, "darcy", "tie")))
    assert data["best_matrix"]["unet"] == {"darcy": 0.15, "tie": 0.1}
    assert data["ranks"]["tie"] == {"fno": 1, "unet": 1, "mlp": 3}
    assert [p["trial"] for p in data["pareto"]["darcy"]["n_params"]] == [8, 0, 3, 2, 9, 1]


def test_html_report_is_written_self_contained_and_logged_on_each_parent_run(sources, tmp_path, capsys) -> None:
    darcy, ns = sources["darcy"], sources["ns"]
    args = ["compare", "darcy", "ns", "--storage", darcy.storage, "--tracking-uri", darcy.tracking_uri]
    assert main([*args, "--format", "html", "--out", str(tmp_path)]) == 0
    report = tmp_path / report_name(["darcy", "ns"])
    assert capsys.readouterr().out.strip() == str(report)
    text = report.read_text()
    assert "<table" in text and "data:image/png;base64," in text and "Plotly.newPlot" in text
    assert "<script src=" not in text and "<link" not in text  # nothing to fetch when opened
    assert {"summary.md", "summary.csv", "summary.json"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "png" / "darcy-pareto.png").stat().st_size > 1000
    client = MlflowClient(darcy.tracking_uri)
    for source in (darcy, ns):
        parent = optuna.load_study(study_name=source.name, storage=source.storage).user_attrs[PARENT_RUN_ATTR]
        assert f"compare/{report.name}" in {a.path for a in client.list_artifacts(parent, "compare")}


# -- bad input -------------------------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_error(sources, tmp_path, capsys) -> None:
    darcy = sources["darcy"]
    stores = ["--storage", darcy.storage, "--tracking-uri", darcy.tracking_uri]
    assert main(["compare", "nope", *stores]) == 1
    error = capsys.readouterr().err
    assert "no study 'nope'" in error and "studies there: darcy, burgers" in error
    assert main(["compare", "darcy", "--storage", f"sqlite:///{tmp_path}/missing.db"]) == 1
    assert "no Optuna storage at" in capsys.readouterr().err and not (tmp_path / "missing.db").exists()
    assert main(["compare", "darcy", *stores, "--format", "html"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["compare", "darcy", "darcy", *stores]) == 1
    assert "given twice" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: []\n")
    assert main(["compare", str(bad)]) == 2


# -- a study that really ran -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_compare_reads_what_a_real_study_recorded(recorded_tiny_study, tmp_path, capsys) -> None:
    run = recorded_tiny_study
    stores = ["--storage", run.storage, "--tracking-uri", run.tracking_uri]
    assert main(["compare", str(run.study_file), *stores, "--format", "json", "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    (summary,) = data["summaries"]
    assert summary["best_value"] == run.outcome.best_values[0] and summary["best_trial"] == run.outcome.best_trial
    assert summary["complete"] == 3 and summary["spread_n"] == 3
    client = MlflowClient(run.tracking_uri)
    best_run = client.get_run(summary["best_run_id"])
    assert summary["n_params"] == int(best_run.data.params["n_params"])
    trials = optuna.load_study(study_name="tiny", storage=run.storage).get_trials()
    speeds = sorted(client.get_run(t.user_attrs[RUN_ATTR]).data.metrics["fit_seconds"] / 2 for t in trials)
    assert summary["seconds_per_epoch"] == pytest.approx(speeds[1])  # median of three; 2 epochs each
    assert (tmp_path / "png" / "tiny-learning-curves.png").exists()
    artifacts = {a.path for a in client.list_artifacts(run.outcome.parent_run_id, "compare")}
    assert artifacts == {"compare/report-tiny.html"}


# -- representation studies: CKA between the best model of each architecture -----------------------------------
@pytest.fixture(scope="module")
def contrastive_run(tmp_path_factory):
    """TINY_CONTRASTIVE_STUDY run once: its file and stores."""
    folder = tmp_path_factory.mktemp("contrastive")
    study_file = write_study(folder, TINY_CONTRASTIVE_STUDY)
    storage, tracking_uri = f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"
    run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)
    return study_file, storage, tracking_uri


@pytest.mark.slow
def test_runner_logs_a_checkpoint_for_each_new_best_of_an_architecture(contrastive_run) -> None:
    _, storage, tracking_uri = contrastive_run
    client = MlflowClient(tracking_uri)
    best_so_far: dict[str, float] = {}
    trials = optuna.load_study(study_name="tiny-contrastive", storage=storage).get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    for trial in sorted(trials, key=lambda t: t.number):  # one worker: the trials finished in this order
        architecture = trial.user_attrs["model"]
        improves = architecture not in best_so_far or trial.value > best_so_far[architecture]
        best_so_far[architecture] = max(trial.value, best_so_far.get(architecture, trial.value))
        artifacts = {a.path for a in client.list_artifacts(trial.user_attrs[RUN_ATTR], "model")}
        assert artifacts == ({"model/model.ckpt", "model/model.json"} if improves else set()), trial.number
    assert set(best_so_far) == {"plain", "projected"}


@pytest.mark.slow
def test_compare_reports_the_cka_matrix_of_the_best_models(contrastive_run, tmp_path, capsys) -> None:
    study_file, storage, tracking_uri = contrastive_run
    stores = ["--storage", storage, "--tracking-uri", tracking_uri]
    assert main(["compare", str(study_file), *stores, "--format", "json", "--out", str(tmp_path)]) == 0
    cka = json.loads(capsys.readouterr().out)["cka"]["tiny-contrastive"]
    assert sorted(cka["architectures"]) == ["plain", "projected"] and cka["n_samples"] == 100 and not cka["note"]
    trials = optuna.load_study(study_name="tiny-contrastive", storage=storage).get_trials()
    for architecture, trial in zip(cka["architectures"], cka["trials"], strict=True):
        own = [t for t in trials if t.user_attrs["model"] == architecture]
        assert trial == max(own, key=lambda t: t.value).number
    for kind in ("linear", "debiased"):
        matrix = np.array(cka[kind])
        assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T)
    linear = np.array(cka["linear"])
    assert ((linear >= 0.0) & (linear <= 1.0 + 1e-9)).all() and linear[0, 1] < 1.0 - 1e-6  # two different models
    report = (tmp_path / report_name(["tiny-contrastive"])).read_text()
    assert "Representation similarity (CKA)" in report and 'aria-label="CKA tiny-contrastive"' in report
    assert (tmp_path / "png" / "tiny-contrastive-cka.png").stat().st_size > 1000


@pytest.mark.slow
def test_cka_says_why_with_fewer_than_two_architectures_and_skips_other_studies(
    contrastive_run, recorded_tiny_study
) -> None:
    _, storage, tracking_uri = contrastive_run
    records = load_records(StudySource("tiny-contrastive", storage, tracking_uri))
    comparison = dataclasses.replace(compare([records]), architectures=["plain"])
    section = cka_section(with_cka(comparison, [records]))
    assert section is not None and not section.plots
    assert "CKA needs the best models of two architectures (have: plain)" in section.body_html
    tiny = recorded_tiny_study  # an operator study: no representations to compare
    operator = load_records(StudySource("tiny", tiny.storage, tiny.tracking_uri))
    assert with_cka(compare([operator]), [operator]).cka == {}


@pytest.mark.slow
def test_compare_reads_a_study_recorded_in_postgresql(postgres_cluster, tmp_path, capsys) -> None:
    storage = postgres_cluster.create_database("compare_optuna")
    tracking = postgres_cluster.create_database("compare_mlflow")
    study_file = write_study(tmp_path, TINY_STUDY)
    outcome = run_study(load_study(study_file), storage=storage, tracking_uri=tracking)
    stores = ["--storage", storage, "--tracking-uri", tracking]
    assert main(["compare", str(study_file), *stores, "--format", "json", "--no-log"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["best_value"] == outcome.best_values[0] and summary["best_trial"] == outcome.best_trial
    assert summary["complete"] == 3
