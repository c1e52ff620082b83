"""Self-tuning network vs TPE and random search at equal compute (training epochs), on a study with
regularisation hyperparameters (default studies/stn_mnist5k.yaml), over seeds.

One self_tuning run of E epochs against N trials of E epochs each for TPE and random search over the same
hyperparameters (the study's `hyperparameters`, sampled per trial by `strategy: optuna`), once per seed
(`trainer.seed` 0 .. S-1: initialisation, batches, perturbations and the sampler). Prints, per run, the objective
(the validation value at the last epoch, as the study ranks trials) against the epochs consumed and the test metric
of the best trial, then the mean and sample standard deviation over the seeds.

Variants (`--only`, repeatable): `self_tuning`; `self_tuning_mip`, the same with the MIP hypernetwork input
(`hypernet_input: mip`); `gated_fixed`, the same gated network and perturbations with no hyper step
(`warmup_epochs` = all epochs: the hyperparameters stay at their initial values); `tpe`; `random`. With `--replay`,
each self-tuning run's recorded schedule is replayed on a fresh plain model (`replay_run`, as `sweeplab replay`):
the replay of `self_tuning` is the plain network with the learned schedule, the replay of `gated_fixed` the plain
network at the fixed initial values, so the four runs separate the schedule from the gated network.

    python bench/stn_vs_tpe.py [--study studies/stn_mnist5k.yaml] [--epochs 20] [--trials 20] [--out DIR]
                               [--stn-epochs E] [--seeds S] [--replay]
                               [--only self_tuning|self_tuning_mip|gated_fixed|tpe|random ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

SELF_TUNING = {"self_tuning": "unconstrained", "self_tuning_mip": "mip", "gated_fixed": "unconstrained"}
SAMPLED = ("tpe", "random")


def _variant(base: dict, name: str, label: str, trials: int, epochs: int, seed: int) -> dict:
    spec = {**base, "name": name, "budget": {"n_trials": trials}}
    spec["trainer"] = {**base.get("trainer", {}), "max_epochs": epochs, "seed": seed}
    if label in SELF_TUNING:
        spec |= {"strategy": "self_tuning", "sampler": "random"}
        settings = {**base.get("self_tuning", {}), "hypernet_input": SELF_TUNING[label]}
        if label == "gated_fixed":
            settings["warmup_epochs"] = epochs
        spec["self_tuning"] = settings
    else:
        spec |= {"strategy": "optuna", "sampler": label}
        spec.pop("self_tuning", None)
    return spec


def _by_epoch(values: list[float], every: int) -> str:
    """``epoch:value`` of a per-epoch metric's values, every ``every`` epochs and at the last."""
    shown = [i for i in range(len(values)) if (i + 1) % every == 0 or i == len(values) - 1]
    return " ".join(f"{i + 1}:{values[i]:.3f}" for i in shown)


def _history(client, run_id: str, metric: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)]


def _summary(label: str, values: list[float]) -> str:
    spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{label} {statistics.fmean(values):.4f}{spread}"


def main() -> None:
    import optuna

    from sweeplab.run import run_study
    from sweeplab.spec import parse_study
    from sweeplab.strategies import replay_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/stn_mnist5k.yaml")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every run")
    parser.add_argument("--trials", type=int, default=20, help="trials of TPE and of random search")
    parser.add_argument("--stn-epochs", type=int, help="epochs of the self-tuning runs (default: --epochs)")
    parser.add_argument("--seeds", type=int, default=1, help="every variant with trainer.seed 0 .. S-1")
    parser.add_argument("--replay", action="store_true", help="replay each self-tuning run's schedule")
    parser.add_argument("--only", choices=[*SELF_TUNING, *SAMPLED], action="append", help="repeatable")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="stn-bench-")))
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.study).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    storage, tracking = f"sqlite:///{args.out}/optuna.db", f"sqlite:///{args.out}/mlflow.db"
    first_seed = base.get("trainer", {}).get("seed", 0)
    stn_epochs = args.stn_epochs or args.epochs
    metric = base["objective"]["metric"]
    test_metric = "test_" + metric.removeprefix("val_")
    maximize = base["objective"].get("direction", "minimize") == "maximize"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    finals: dict[str, list[float]] = defaultdict(list)
    last_means: dict[str, list[float]] = defaultdict(list)
    tests: dict[str, list[float]] = defaultdict(list)

    def report_single(label: str, seed: int, run_id: str, epochs: int, final: float, extra: str = "") -> None:
        history = _history(client, run_id, metric)
        every = max(1, epochs // 8)
        tail = history[-min(5, len(history)) :]
        test = client.get_run(run_id).data.metrics.get(test_metric, float("nan"))
        finals[label].append(final)
        last_means[label].append(sum(tail) / len(tail))
        tests[label].append(test)
        print(
            f"{label:<15} seed={seed} epochs={epochs:<5} final {metric}={final:.4f} {test_metric}={test:.4f} "
            f"mean of the last {len(tail)} epochs={last_means[label][-1]:.4f}  {metric} by epoch: "
            + _by_epoch(history, every)
            + extra,
            flush=True,
        )

    for seed in range(first_seed, first_seed + args.seeds):
        for label in (*SELF_TUNING, *SAMPLED):
            if args.only and label not in args.only:
                continue
            trials, epochs = (1, stn_epochs) if label in SELF_TUNING else (args.trials, args.epochs)
            name = f"{base['name']}-{label}-{epochs}-seed{seed}"
            spec = _variant(base, name, label, trials, epochs, seed)
            run_study(parse_study(yaml.safe_dump(spec, sort_keys=False), f"{label}.yaml"), storage, tracking)
            complete = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.values]
            pick = max if maximize else min
            winner = pick(complete, key=lambda t: t.values[0])
            run_id = winner.user_attrs["sweeplab.mlflow_run_id"]
            if label in SAMPLED:
                best, curve = None, []
                for index, trial in enumerate(complete, start=1):
                    best = trial.values[0] if best is None else pick(best, trial.values[0])
                    curve.append(f"{index * epochs}:{best:.4f}")
                test = client.get_run(run_id).data.metrics.get(test_metric, float("nan"))
                finals[label].append(best)
                tests[label].append(test)
                print(
                    f"{label:<15} seed={seed} epochs={len(complete) * epochs:<5} best {metric}={best:.4f} "
                    f"{test_metric}={test:.4f}  best-so-far by epochs: " + " ".join(curve),
                    flush=True,
                )
                continue
            final = {k.removeprefix("hp."): v for k, v in winner.params.items() if k.startswith("hp.")}
            values = ", ".join(f"{k}={v:.3g}" for k, v in final.items())
            report_single(label, seed, run_id, epochs, winner.values[0], "  final: " + values)
            if args.replay:
                outcome = replay_run(run_id, tracking)
                replayed = f"{label}+replay"
                report_single(replayed, seed, outcome.replay_run_id, epochs, outcome.replay_value)
    print(
        f"\nmean +- sample standard deviation over {args.seeds} seed(s), {metric} at the last epoch "
        "(sampled strategies: their best trial's):"
    )
    for label, values in finals.items():
        parts = [_summary("final", values)]
        if label in last_means:
            parts.append(_summary("last-5 mean", last_means[label]))
        parts.append(_summary(test_metric, tests[label]))
        print(f"  {label:<22} " + "  ".join(parts))
    print(f"stores: {args.out}")


if __name__ == "__main__":
    main()
