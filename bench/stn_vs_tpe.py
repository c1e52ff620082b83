"""Self-tuning network vs TPE and random search at equal compute (training epochs), on a study with
regularisation hyperparameters (default studies/stn_mnist5k.yaml).

One self_tuning run of E epochs against N trials of E epochs each for TPE and random search over the same
hyperparameters (the study's `hyperparameters`, sampled per trial by `strategy: optuna`). Prints, per strategy,
the best validation loss (the objective) against the epochs consumed, and the test metric of the best trial.
`self_tuning_mip` is the self-tuning run with the MIP hypernetwork input (`hypernet_input: mip`); for both
self-tuning variants the validation loss by epoch (convergence) is printed too, once per seed (`--seeds`).

    python bench/stn_vs_tpe.py [--study studies/stn_mnist5k.yaml] [--epochs 20] [--trials 20] [--out DIR]
                               [--stn-epochs E] [--seeds S]
                               [--only self_tuning|self_tuning_mip|tpe|random ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml


def _variant(
    base: dict, name: str, strategy: str, sampler: str, trials: int, epochs: int, seed: int, hypernet_input: str
) -> dict:
    spec = {**base, "name": name, "strategy": strategy, "sampler": sampler, "budget": {"n_trials": trials}}
    spec["trainer"] = {**base.get("trainer", {}), "max_epochs": epochs, "seed": seed}
    if strategy == "self_tuning":
        spec["self_tuning"] = {**base.get("self_tuning", {}), "hypernet_input": hypernet_input}
    else:
        spec.pop("self_tuning", None)
    return spec


def _by_epoch(values: list[float], every: int) -> str:
    """``epoch:value`` of a per-epoch metric's values, every ``every`` epochs and at the last."""
    shown = [i for i in range(len(values)) if (i + 1) % every == 0 or i == len(values) - 1]
    return " ".join(f"{i + 1}:{values[i]:.3f}" for i in shown)


def main() -> None:
    import optuna

    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/stn_mnist5k.yaml")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every run")
    parser.add_argument("--trials", type=int, default=20, help="trials of TPE and of random search")
    parser.add_argument("--stn-epochs", type=int, help="epochs of the self-tuning run (default: --epochs)")
    parser.add_argument("--seeds", type=int, default=1, help="self-tuning runs with trainer.seed 0 .. S-1")
    parser.add_argument(
        "--only", choices=["self_tuning", "self_tuning_mip", "tpe", "random"], action="append", help="repeatable"
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="stn-bench-")))
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.study).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    storage, tracking = f"sqlite:///{args.out}/optuna.db", f"sqlite:///{args.out}/mlflow.db"
    seed = base.get("trainer", {}).get("seed", 0)
    stn_epochs = args.stn_epochs or args.epochs
    seeds = range(seed, seed + args.seeds)
    variants = [
        *(("self_tuning", "self_tuning", "random", 1, stn_epochs, s, "unconstrained") for s in seeds),
        *(("self_tuning_mip", "self_tuning", "random", 1, stn_epochs, s, "mip") for s in seeds),
        ("tpe", "optuna", "tpe", args.trials, args.epochs, seed, "unconstrained"),
        ("random", "optuna", "random", args.trials, args.epochs, seed, "unconstrained"),
    ]
    metric = base["objective"]["metric"]
    test_metric = "test_" + metric.removeprefix("val_")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    for label, strategy, sampler, trials, epochs, run_seed, hypernet_input in variants:
        if args.only and label not in args.only:
            continue
        name = f"{base['name']}-{label}-{epochs}-seed{run_seed}"
        spec = _variant(base, name, strategy, sampler, trials, epochs, run_seed, hypernet_input)
        run_study(parse_study(yaml.safe_dump(spec, sort_keys=False), f"{label}.yaml"), storage, tracking)
        complete = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.values]
        best, curve = float("inf"), []
        for index, trial in enumerate(complete, start=1):
            best = min(best, trial.values[0])
            curve.append(f"{index * epochs}:{best:.4f}")
        winner = min(complete, key=lambda t: t.values[0])
        run_id = winner.user_attrs["sweeplab.mlflow_run_id"]
        run = client.get_run(run_id)
        line = (
            f"{label:<15} seed={run_seed} epochs={len(complete) * epochs:<5} best {metric}={best:.4f} "
            f"{test_metric}={run.data.metrics.get(test_metric, float('nan')):.4f}"
        )
        if strategy == "self_tuning":
            every = max(1, epochs // 8)
            history = [m.value for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)]
            tail = history[-every:]
            line += f" mean of the last {len(tail)} epochs={sum(tail) / len(tail):.4f}"
            line += f"  {metric} by epoch: " + _by_epoch(history, every)
            final = {k.removeprefix("hp."): v for k, v in winner.params.items() if k.startswith("hp.")}
            line += "  final: " + ", ".join(f"{k}={v:.3g}" for k, v in final.items())
        else:
            line += "  best-so-far by epochs: " + " ".join(curve)
        print(line, flush=True)
    print(f"stores: {args.out}")


if __name__ == "__main__":
    main()
