"""Reproduce published operator-learning errors: each architecture at its paper configuration beside the paper's.

``--problem darcy`` (default) runs ``studies/darcy_architectures_paper.yaml`` (FNO recipe, 85 x 85 from a 421 x 421
solve, 1000 training and 200 test samples, 500 epochs, each model's published optimiser and schedule): GPU work, run
it with the device tool, a few architectures per session. ``--problem burgers`` runs
``studies/burgers_operators_paper.yaml`` (nu = 0.1, 1024 points from 8192, 1000/100/200 samples, 500 epochs; tested
zero-shot at 256 and 4096 points), which fits the CPU: one model per process, ``--threads 1``, two side by side.

Either runs the paper study as a sweeplab study, one trial per architecture (``NAME`` or ``NAME:PRESET`` to train
another of the registry's presets), and prints a markdown table: test relative L2 (and at the other test
resolutions), parameters, seconds per epoch and the device, beside the published error, their ratio and the goal (at
most 10% above it). For Burgers, ``fno1d-independent[:PRESET]`` trains the baseline: an independent plain-PyTorch
implementation of the FNO authors' 1D formulation (``bench/_reference_fno1d.py``) with the same network as the
study's ``fno1d`` preset (or PRESET), on the same cached arrays, seed, batch size, learning rate and schedule; its
per-epoch progress goes to ``independent.jsonl`` in ``--out``. ``--report DIR ...`` prints the table of runs in
those folders, finished or not (an unfinished trial shows its last validation error and epoch; an unfinished
baseline is PARTIAL, running or stopped), then the validation curves by epoch. ``--epochs``/``--data`` shrink a run
for a dry run; ``--epochs``, ``--step-size`` and ``--seed`` also run a longer schedule or another seed.

    python bench/reproduce.py [--problem darcy|burgers] [--models fno2d unet2d lsm mgno] [--epochs 500]
        [--step-size 100] [--seed 0] [--data n_train=20 ...] [--threads 1] [--out DIR]
    python bench/reproduce.py --problem burgers --report DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOAL_MARGIN = 1.10
INDEPENDENT = "fno1d-independent"
INDEPENDENT_LOG = "independent.jsonl"
INDEPENDENT_RESULT = "independent.json"


@dataclass(frozen=True)
class Problem:
    study: Path
    default_models: tuple[str, ...]
    published: dict[str, float]
    """Test relative L2 by architecture; where each comes from: ``sources`` and ../shared/reference/anchors.md."""
    sources: dict[str, str]


PROBLEMS = {
    "darcy": Problem(
        ROOT / "studies" / "darcy_architectures_paper.yaml",
        ("fno2d", "unet2d", "lsm", "mgno"),
        {"fno2d": 0.0108, "unet2d": 0.0080, "lsm": 0.0065, "deeponet2d": 0.0588},
        {
            "fno2d": "FNO paper, s = 85",
            "unet2d": "LSM paper, Table 1",
            "lsm": "LSM paper, Table 1",
            "deeponet2d": "LSM paper, Table 1",
        },
    ),
    "burgers": Problem(
        ROOT / "studies" / "burgers_operators_paper.yaml",
        ("fno1d", INDEPENDENT, "deeponet1d", "multionet1d"),
        {"fno1d": 0.0025, INDEPENDENT: 0.0025, "deeponet1d": 0.0215, "multionet1d": 0.0021},
        {
            "fno1d": "authors' current code, ~0.0025 (FNO repository issue #30; paper: 0.0160)",
            INDEPENDENT: "authors' current code, ~0.0025 (FNO repository issue #30; paper: 0.0160)",
            "deeponet1d": "Lu et al. 2022 (CMAME 393), same FNO set at 128 points, 500k full-batch iterations",
            "multionet1d": "DGenNO repository notebook, a different set (nu = 0.1/pi on [-1, 1]): not comparable",
        },
    ),
}


def split_model(token: str) -> tuple[str, str | None]:
    name, _, preset = token.partition(":")
    return name, preset or None


def study_spec(
    problem: Problem,
    models: list[str],
    epochs: int | None,
    data: dict[str, object],
    threads: int | None,
    step_size: int | None = None,
    seed: int | None = None,
) -> dict:
    """The paper study cut to the sweeplab ``models`` (``NAME`` or ``NAME:PRESET``), with the overrides applied."""
    spec = yaml.safe_load(problem.study.read_text())
    known = {model["name"]: model for model in spec["models"]}
    chosen = []
    for token in models:
        name, preset = split_model(token)
        if name not in known:
            raise SystemExit(f"unknown model {name!r}; {problem.study.name} has {sorted(known)}")
        chosen.append({**known[name], **({"preset": preset} if preset else {})})
    spec["models"] = chosen
    spec["data"]["params"].update(data)
    if epochs is not None:
        spec["trainer"]["max_epochs"] = epochs
    if threads is not None:
        spec["trainer"]["num_threads"] = threads
    if step_size is not None:
        spec["search"]["step_size"] = step_size
    if seed is not None:  # initialisation and batches; the data set keeps its own seed
        spec["trainer"]["seed"] = seed
    return spec


def _schedule(spec: dict) -> tuple[int, int | None, int]:
    """A study's epochs, epochs between learning-rate steps and seed."""
    return spec["trainer"]["max_epochs"], spec["search"].get("step_size"), spec["trainer"].get("seed", 0)


def _labelled(label: str, problem: Problem, schedule: tuple[int, int | None, int]) -> str:
    """``label`` with what differs from the paper study's schedule and seed, so that runs of one model with other
    seeds or schedules stay apart in the tables."""
    epochs, step_size, seed = schedule
    paper_epochs, paper_step, paper_seed = _schedule(yaml.safe_load(problem.study.read_text()))
    parts = [f"{epochs} epochs, step {step_size}"] if (epochs, step_size) != (paper_epochs, paper_step) else []
    parts += [f"seed {seed}"] if seed != paper_seed else []
    return f"{label} ({', '.join(parts)})" if parts else label


def _study_label(spec: dict, name: str, problem: Problem) -> str:
    presets = {model["name"]: model.get("preset") for model in spec["models"]}
    return _labelled(f"{name}:{presets[name]}" if presets.get(name) else name, problem, _schedule(spec))


def _independent_label(record: dict, problem: Problem) -> str:
    settings = record["settings"]
    return _labelled(record["label"], problem, (settings["epochs"], settings["step_size"], settings["seed"]))


def _row(
    label: str,
    architecture: str,
    problem: Problem,
    state: str | None,
    test: dict[int | None, float | None],
    val: float | None,
    epochs: int | None,
    parameters: int | None,
    seconds_per_epoch: float | None,
    device: str,
) -> dict[str, object]:
    error = test.get(None)
    published = problem.published.get(architecture)
    return {
        "model": label,
        "state": state,
        "test_rel_l2": error,
        "test_at": {size: value for size, value in test.items() if size is not None},
        "val_rel_l2": val,
        "epochs": epochs,
        "published": published,
        "goal_met": None if error is None or published is None else error <= GOAL_MARGIN * published,
        "parameters": parameters,
        "seconds_per_epoch": seconds_per_epoch,
        "device": device,
    }


def study_rows(out: Path, problem: Problem) -> list[dict[str, object]]:
    """The trial runs recorded in ``out`` (finished or running) as table rows."""
    if not (out / "mlflow.db").exists():
        return []
    from mlflow.tracking import MlflowClient

    spec = yaml.safe_load((out / "study.yaml").read_text())
    sizes = [size for size in spec["data"]["params"].get("test_resolutions", [])]
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    experiment = client.get_experiment_by_name(spec["name"])
    if experiment is None:
        return []
    # Not the attempts that ran out of memory beside another trial and were retried.
    trial_runs = "tags.`sweeplab.role` = 'trial' AND tags.`sweeplab.state` != 'RETRIED'"
    rows = []
    for run in client.search_runs([experiment.experiment_id], trial_runs):
        metrics, tags = run.data.metrics, run.data.tags
        name = tags["sweeplab.architecture"]
        test = {None: metrics.get("test_rel_l2")} | {size: metrics.get(f"test_rel_l2_{size}") for size in sizes}
        epochs = int(metrics["epochs"]) if "epochs" in metrics else None
        if epochs is None:  # still training: the epochs validated so far
            epochs = len(client.get_metric_history(run.info.run_id, "val_rel_l2")) or None
        rows.append(
            _row(
                _study_label(spec, name, problem),
                name,
                problem,
                tags.get("sweeplab.state", run.info.status),
                test,
                metrics.get("val_rel_l2"),
                epochs,
                int(metrics["n_params"]) if "n_params" in metrics else None,
                metrics["fit_seconds"] / max(metrics.get("epochs", 1), 1) if "fit_seconds" in metrics else None,
                tags.get("sweeplab.device", "?"),
            )
        )
    return rows


def independent_rows(out: Path, problem: Problem) -> list[dict[str, object]]:
    """The independent FNO-1D run in ``out``: its result when finished, else its progress so far."""
    result, log = out / INDEPENDENT_RESULT, out / INDEPENDENT_LOG
    if result.exists():
        done = json.loads(result.read_text())
        test = {None: done["test_rel_l2"][str(done["resolution"])]} | {
            int(size): value for size, value in done["test_rel_l2"].items() if int(size) != done["resolution"]
        }
        return [
            _row(
                _independent_label(done, problem),
                INDEPENDENT,
                problem,
                "COMPLETE",
                test,
                done["val_rel_l2"],
                done["epochs"],
                done["n_params"],
                done["seconds_per_epoch"],
                "cpu",
            )
        ]
    if log.exists():
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        header, epochs = records[0], records[1:]
        last = epochs[-1] if epochs else {}
        seconds = sum(record["seconds"] for record in epochs) / len(epochs) if epochs else None
        return [
            _row(
                _independent_label(header, problem),
                INDEPENDENT,
                problem,
                "PARTIAL",
                {None: None},
                last.get("val_rel_l2"),
                last.get("epoch"),
                header["n_params"],
                seconds,
                "cpu",
            )
        ]
    return []


def markdown(rows: list[dict[str, object]], sizes: list[int]) -> str:
    def cell(value: object, spec: str = "") -> str:
        return "-" if value is None else format(value, spec)

    other = [size for size in sizes if any(size in row["test_at"] for row in rows)]  # type: ignore[operator]
    lines = [
        "| model | state | epochs | test rel. L2 | "
        + "".join(f"at {size} | " for size in other)
        + "last val. rel. L2 | published | ours / published | at most 10% above | parameters | s / epoch | device |",
        "| --- " * (11 + len(other)) + "|",
    ]
    for row in rows:
        met = {True: "yes", False: "no", None: "-"}[row["goal_met"]]  # type: ignore[index]
        at = "".join(f"{cell(row['test_at'].get(size), '.4f')} | " for size in other)  # type: ignore[union-attr]
        error, published = row["test_rel_l2"], row["published"]
        ratio = None if error is None or published is None else error / published  # type: ignore[operator]
        lines.append(
            f"| {row['model']} | {row['state']} | {cell(row['epochs'])} | {cell(row['test_rel_l2'], '.4f')} | {at}"
            f"{cell(row['val_rel_l2'], '.4f')} | {cell(published, '.4f')} | {cell(ratio, '.2f')} | {met} | "
            f"{cell(row['parameters'], ',')} | {cell(row['seconds_per_epoch'], '.2f')} | {row['device']} |"
        )
    return "\n".join(lines)


def run_independent(out: Path, spec: dict, preset: str | None) -> None:
    """Train the independent FNO-1D on the study's cached data, with the study's fno1d settings (or ``preset``)."""
    import torch
    from _reference_fno1d import ReferenceSettings, parameter_count, train_reference

    from sweeplab.data import load_dataset
    from sweeplab_modules.registry import MODELS

    # As a sweeplab trial on the CPU: weights that weight decay drives towards zero become subnormal floats, whose
    # arithmetic made late epochs 2-3x slower here (BENCHMARKS.md); flushing them changes no result that matters.
    torch.set_flush_denormal(True)
    (fno,) = [model for model in spec["models"] if model["name"] == "fno1d"]
    preset = preset or fno["preset"]
    network = MODELS["fno1d"].presets[preset]
    if network.get("padding", 0) or network.get("padding_fraction", 0):
        raise SystemExit(f"fno1d preset {preset!r} pads the domain; the independent implementation does not")
    search, trainer = spec["search"], spec["trainer"]
    batch_size = fno["params"]["batch_size"]
    settings = ReferenceSettings(
        width=network["width"],
        modes=network["modes"],
        n_layers=network["n_layers"],
        projection_width=network["projection_width"],
        activation=network["activation"],
        epochs=trainer["max_epochs"],
        batch_size=batch_size,
        lr=fno["params"]["lr"],
        # The authors' loss is summed over the batch, sweeplab's averaged: Adam sees the same step when the decay
        # applied to the sum is batch_size times the study's.
        weight_decay=fno["params"].get("weight_decay", 0.0) * batch_size,
        step_size=search["step_size"],
        gamma=search["gamma"],
        seed=trainer["seed"],
    )
    if trainer.get("num_threads"):
        torch.set_num_threads(trainer["num_threads"])
    data = load_dataset(spec["data"]["name"], spec["data"]["params"])

    def field(array) -> torch.Tensor:  # (samples, 1, n) -> (samples, n)
        return torch.from_numpy(array[:, 0]).float()

    resolution = data.x_test.shape[-1]
    tests = {resolution: (field(data.x_test), field(data.y_test))}
    tests |= {size: (field(x), field(y)) for size, (x, y) in data.test_at_resolution.items()}
    label = f"{INDEPENDENT}:{preset}"
    with (out / INDEPENDENT_LOG).open("w") as log:
        header = {"label": label, "data": data.identity, "n_params": parameter_count(settings)}
        header["settings"] = asdict(settings)
        log.write(json.dumps(header) + "\n")
        log.flush()

        def on_epoch(record: dict[str, float]) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        result = train_reference(
            field(data.x_train), field(data.y_train), field(data.x_val), field(data.y_val), tests, settings, on_epoch
        )
    summary = {
        "label": label,
        "data": data.identity,
        "resolution": resolution,
        "epochs": settings.epochs,
        "n_params": result.n_params,
        "seconds_per_epoch": result.seconds_per_epoch,
        "val_rel_l2": result.val_rel_l2,
        "test_rel_l2": {str(size): value for size, value in result.test_rel_l2.items()},
        "settings": asdict(settings),
    }
    (out / INDEPENDENT_RESULT).write_text(json.dumps(summary, indent=1) + "\n")


def validation_curves(out: Path, problem: Problem) -> dict[str, list[float]]:
    """Each run's validation relative L2 after each epoch so far, by model label."""
    curves = {}
    log = out / INDEPENDENT_LOG
    if log.exists():
        header, *epochs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        curves[_independent_label(header, problem)] = [record["val_rel_l2"] for record in epochs]
    if (out / "mlflow.db").exists():
        from mlflow.tracking import MlflowClient

        spec = yaml.safe_load((out / "study.yaml").read_text())
        client = MlflowClient(f"sqlite:///{out}/mlflow.db")
        experiment = client.get_experiment_by_name(spec["name"])
        trial_runs = "tags.`sweeplab.role` = 'trial' AND tags.`sweeplab.state` != 'RETRIED'"
        for run in client.search_runs([experiment.experiment_id], trial_runs) if experiment else []:
            name = run.data.tags["sweeplab.architecture"]
            history = sorted(client.get_metric_history(run.info.run_id, "val_rel_l2"), key=lambda m: m.step)
            curves[_study_label(spec, name, problem)] = [metric.value for metric in history]
    return curves


CURVE_EPOCHS = (1, 10, 25, 50, 100, 200, 300, 400, 500, 1000, 2000)


def curve_table(folders: list[Path], problem: Problem, epochs: tuple[int, ...] = CURVE_EPOCHS) -> str:
    """Validation relative L2 at the given epochs (those any run reached), at each run's last epoch and its lowest
    (the curves are noisy at the first learning rates: one epoch's value says little about a partial run)."""
    curves = {label: curve for out in folders for label, curve in validation_curves(out, problem).items()}
    reached = [epoch for epoch in epochs if any(len(curve) >= epoch for curve in curves.values())]
    lines = [
        "| model | " + "".join(f"epoch {epoch} | " for epoch in reached) + "last (epoch) | lowest (epoch) |",
        "| --- " * (len(reached) + 3) + "|",
    ]
    for label, curve in sorted(curves.items()):
        cells = "".join(f"{curve[epoch - 1]:.4f} | " if len(curve) >= epoch else "- | " for epoch in reached)
        last = f"{curve[-1]:.4f} ({len(curve)})" if curve else "-"
        lowest = f"{min(curve):.4f} ({curve.index(min(curve)) + 1})" if curve else "-"
        lines.append(f"| {label} | {cells}{last} | {lowest} |")
    return "\n".join(lines)


def table(folders: list[Path], problem: Problem) -> str:
    spec = yaml.safe_load(problem.study.read_text())
    rows = sorted(
        (row for out in folders for row in study_rows(out, problem) + independent_rows(out, problem)),
        key=lambda row: str(row["model"]),
    )
    published = sorted({str(row["model"]).split(":")[0] for row in rows} & set(problem.sources))
    sources = "".join(f"\n- {name}: {problem.sources[name]}" for name in published)
    report = markdown(rows, spec["data"]["params"].get("test_resolutions", []))
    return report + (f"\n\npublished numbers:{sources}" if sources else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="darcy", help="which paper study")
    parser.add_argument("--models", nargs="+", help="architectures, NAME or NAME:PRESET (default: the problem's)")
    parser.add_argument("--epochs", type=int, help="override the published 500 epochs (dry runs, longer schedules)")
    parser.add_argument("--step-size", type=int, help="override the epochs between learning-rate halvings")
    parser.add_argument("--seed", type=int, help="override trainer.seed (initialisation, batches; not the data)")
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE", help="override data parameters")
    parser.add_argument("--threads", type=int, help="torch CPU threads per trial (trainer.num_threads)")
    parser.add_argument("--out", type=Path, help="folder for the stores and the table (default: a temporary one)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="DIR", help="print the table of earlier runs")
    args = parser.parse_args()
    problem = PROBLEMS[args.problem]
    if args.report:
        print(table(args.report, problem))
        print("\nvalidation relative L2 by epoch:\n")
        print(curve_table(args.report, problem))
        return
    models = args.models or list(problem.default_models)
    independent = [token for token in models if split_model(token)[0] == INDEPENDENT]
    if independent and args.problem != "burgers":
        raise SystemExit(f"{INDEPENDENT} is a Burgers (1D) baseline")
    if len(independent) > 1:
        raise SystemExit(f"one {INDEPENDENT} per --out folder (its log is {INDEPENDENT_LOG})")
    studied = [token for token in models if token not in independent]
    data = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.data)}
    out = args.out or Path(tempfile.mkdtemp(prefix="reproduce-"))
    out.mkdir(parents=True, exist_ok=True)
    if studied:
        spec = study_spec(problem, studied, args.epochs, data, args.threads, args.step_size, args.seed)
        from sweeplab.run import run_study
        from sweeplab.spec import load_study

        path = out / "study.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        study = load_study(path)
        storage, tracking_uri = f"sqlite:///{out}/optuna.db", f"sqlite:///{out}/mlflow.db"
        run_study(study, storage=storage, tracking_uri=tracking_uri, n_trials=len(study.models))
    for token in independent:
        # The study's fno1d entry gives the baseline its settings, whether or not fno1d is trained here too.
        settings = study_spec(problem, ["fno1d"], args.epochs, data, args.threads, args.step_size, args.seed)
        run_independent(out, settings, split_model(token)[1])
    report = table([out], problem)
    (out / "results.md").write_text(report + "\n")
    print(report)
    print(f"\nstores and results.md in {out}")


if __name__ == "__main__":
    main()
