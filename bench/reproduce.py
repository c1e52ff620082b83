"""Reproduce the published Darcy errors: each architecture at its paper configuration, next to the paper's number.

Runs ``studies/darcy_architectures_paper.yaml`` (FNO recipe, 85 x 85 from a 421 x 421 solve, 1000 training and
200 test samples, 500 epochs, each model's published optimiser and schedule) as a sweeplab study, one trial per
architecture, then prints a markdown table: test relative L2, parameters, seconds per epoch and the device, beside
the published error and the goal (within 10% of it). GPU work: run it with the device tool, a few architectures
per session (``--models``); ``--epochs``/``--data`` shrink it for a dry run on the CPU.

    python bench/reproduce.py [--models fno2d unet2d lsm mgno] [--epochs 500] [--data n_train=20 ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from sweeplab.run import run_study
from sweeplab.spec import load_study

STUDY = Path(__file__).resolve().parents[1] / "studies" / "darcy_architectures_paper.yaml"
# Test relative L2 on Darcy 85 x 85 (FNO paper; LSM paper's Table 1); ../shared/reference/anchors.md.
PUBLISHED = {"fno2d": 0.0108, "unet2d": 0.0080, "lsm": 0.0065, "deeponet2d": 0.0588}
GOAL_MARGIN = 1.10


def study_text(models: list[str], epochs: int | None, data: dict[str, object]) -> str:
    spec = yaml.safe_load(STUDY.read_text())
    known = [model["name"] for model in spec["models"]]
    unknown = sorted(set(models) - set(known))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; the study has {known}")
    spec["models"] = [model for model in spec["models"] if model["name"] in models]
    spec["data"]["params"].update(data)
    if epochs is not None:
        spec["trainer"]["max_epochs"] = epochs
    return yaml.safe_dump(spec, sort_keys=False)


def results(tracking_uri: str, study_name: str) -> list[dict[str, object]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    # Not the attempts that ran out of memory beside another trial and were retried.
    trial_runs = "tags.`sweeplab.role` = 'trial' AND tags.`sweeplab.state` != 'RETRIED'"
    runs = client.search_runs([experiment.experiment_id], trial_runs)
    rows = []
    for run in runs:
        metrics, tags = run.data.metrics, run.data.tags
        name = tags["sweeplab.architecture"]
        error = metrics.get("test_rel_l2")
        published = PUBLISHED.get(name)
        rows.append(
            {
                "architecture": name,
                "state": tags.get("sweeplab.state"),
                "test_rel_l2": error,
                "published": published,
                "goal_met": None if error is None or published is None else error <= GOAL_MARGIN * published,
                "parameters": int(metrics["n_params"]) if "n_params" in metrics else None,
                "seconds_per_epoch": metrics["fit_seconds"] / max(metrics.get("epochs", 1), 1)
                if "fit_seconds" in metrics
                else None,
                "device": tags.get("sweeplab.device", "?"),
            }
        )
    return sorted(rows, key=lambda row: str(row["architecture"]))


def markdown(rows: list[dict[str, object]]) -> str:
    def cell(value: object, spec: str = "") -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        "| architecture | test rel. L2 | published | within 10% | parameters | s / epoch | device |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = {True: "yes", False: "no", None: "-"}[row["goal_met"]]  # type: ignore[index]
        lines.append(
            f"| {row['architecture']} | {cell(row['test_rel_l2'], '.4f')} | {cell(row['published'], '.4f')} | "
            f"{met} | {cell(row['parameters'], ',')} | {cell(row['seconds_per_epoch'], '.2f')} | {row['device']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fno2d", "unet2d", "lsm", "mgno"], help="architectures")
    parser.add_argument("--epochs", type=int, help="override the published 500 epochs (dry runs)")
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE", help="override data parameters")
    parser.add_argument("--out", type=Path, help="folder for the stores and the table (default: a temporary one)")
    args = parser.parse_args()
    data = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.data)}
    out = args.out or Path(tempfile.mkdtemp(prefix="reproduce-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.yaml"
    path.write_text(study_text(args.models, args.epochs, data))
    study = load_study(path)
    storage, tracking_uri = f"sqlite:///{out}/optuna.db", f"sqlite:///{out}/mlflow.db"
    run_study(study, storage=storage, tracking_uri=tracking_uri, n_trials=len(study.models))
    table = markdown(results(tracking_uri, study.name))
    (out / "results.md").write_text(table + "\n")
    print(table)
    print(f"\nstores and results.md in {out}")


if __name__ == "__main__":
    main()
