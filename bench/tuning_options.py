"""A study's grid run for several seeds: the mean and spread of the test metric of every grid point (default
studies/polycom_darcy.yaml: PolyCom activations x cosine power annealing on the quickstart's FNO-2D).

    python bench/tuning_options.py [--study studies/polycom_darcy.yaml] [--seeds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml


def main() -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from sweeplab.record import RUN_ATTR
    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/polycom_darcy.yaml")
    parser.add_argument("--seeds", type=int, default=3, help="trainer.seed 0 .. S-1")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="options-bench-")))
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.study).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    storage, tracking = f"sqlite:///{args.out}/optuna.db", f"sqlite:///{args.out}/mlflow.db"
    metric = base["objective"]["metric"]
    test_metric = "test_" + metric.removeprefix("val_")
    results: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for seed in range(args.seeds):
        spec = {**base, "name": f"{base['name']}-seed{seed}", "trainer": {**base["trainer"], "seed": seed}}
        study = parse_study(yaml.safe_dump(spec, sort_keys=False), args.study)
        run_study(study, storage, tracking)
        client = MlflowClient(tracking)
        for trial in optuna.load_study(study_name=spec["name"], storage=storage).trials:
            if trial.values is None:
                continue
            point = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(trial.params.items()) if k != "model")
            run = client.get_run(trial.user_attrs[RUN_ATTR])
            results[point].append((trial.values[0], run.data.metrics[test_metric]))
            print(f"seed {seed}: {point}: {metric}={trial.values[0]:.4f} {test_metric}={results[point][-1][1]:.4f}")
    print(f"| grid point | {metric}, seeds 0 .. {args.seeds - 1} | mean | {test_metric}, seeds | mean |")
    print("| --- | --- | --- | --- | --- |")
    for point, values in results.items():
        validation, test = zip(*values, strict=True)
        print(
            f"| {point} | {' / '.join(f'{v:.4f}' for v in validation)} | {statistics.mean(validation):.4f} "
            f"| {' / '.join(f'{v:.4f}' for v in test)} | {statistics.mean(test):.4f} |"
        )
    print(f"stores: {args.out}")


if __name__ == "__main__":
    main()
