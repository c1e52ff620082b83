"""Self-tuning network vs TPE and random search at equal compute (training epochs), on a study with
regularisation hyperparameters (default studies/stn_mnist5k.yaml).

One self_tuning run of E epochs against N trials of E epochs each for TPE and random search over the same
hyperparameters (the study's `hyperparameters`, sampled per trial by `strategy: optuna`). Prints, per strategy,
the best validation loss (the objective) against the epochs consumed, and the test metric of the best trial.

    python bench/stn_vs_tpe.py [--study studies/stn_mnist5k.yaml] [--epochs 20] [--trials 20] [--out DIR]
                               [--stn-epochs E] [--only self_tuning|tpe|random ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml


def _variant(base: dict, name: str, strategy: str, sampler: str, trials: int, epochs: int) -> dict:
    spec = {**base, "name": name, "strategy": strategy, "sampler": sampler, "budget": {"n_trials": trials}}
    spec["trainer"] = {**base.get("trainer", {}), "max_epochs": epochs}
    if strategy != "self_tuning":
        spec.pop("self_tuning", None)
    return spec


def main() -> None:
    import optuna

    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/stn_mnist5k.yaml")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every run")
    parser.add_argument("--trials", type=int, default=20, help="trials of TPE and of random search")
    parser.add_argument("--stn-epochs", type=int, help="epochs of the self-tuning run (default: --epochs)")
    parser.add_argument("--only", choices=["self_tuning", "tpe", "random"], action="append", help="repeatable")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="stn-bench-")))
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.study).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    storage, tracking = f"sqlite:///{args.out}/optuna.db", f"sqlite:///{args.out}/mlflow.db"
    variants = [
        ("self_tuning", "self_tuning", "random", 1, args.stn_epochs or args.epochs),
        ("tpe", "optuna", "tpe", args.trials, args.epochs),
        ("random", "optuna", "random", args.trials, args.epochs),
    ]
    metric = base["objective"]["metric"]
    test_metric = "test_" + metric.removeprefix("val_")
    for label, strategy, sampler, trials, epochs in variants:
        if args.only and label not in args.only:
            continue
        name = f"{base['name']}-{label}-{epochs}"
        spec = _variant(base, name, strategy, sampler, trials, epochs)
        run_study(parse_study(yaml.safe_dump(spec, sort_keys=False), f"{label}.yaml"), storage, tracking)
        complete = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.values]
        best, curve = float("inf"), []
        for index, trial in enumerate(complete, start=1):
            best = min(best, trial.values[0])
            curve.append(f"{index * epochs}:{best:.4f}")
        winner = min(complete, key=lambda t: t.values[0])
        from mlflow.tracking import MlflowClient

        run = MlflowClient(tracking).get_run(winner.user_attrs["sweeplab.mlflow_run_id"])
        print(
            f"{label:<12} epochs={len(complete) * epochs:<5} best {metric}={best:.4f} "
            f"{test_metric}={run.data.metrics.get(test_metric, float('nan')):.4f}  best-so-far by epochs: "
            + " ".join(curve)
        )
    print(f"stores: {args.out}")


if __name__ == "__main__":
    main()
