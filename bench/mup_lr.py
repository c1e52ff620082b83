"""The optimal learning rate of FNO-2D on Darcy (the quickstart's data, 29 x 29) across widths, under the standard
parametrization and under muP (base width 8): one grid study per parametrization over (width, Adam lr), every
trial a real study trial recorded in the stores under --out. Prints, per width, the validation relative L2 at every
learning rate and the best learning rate; under muP the best one should stay put as the width grows.

    python bench/mup_lr.py [--widths 8 16 32 64] [--lrs 1e-3 ... ] [--epochs 8] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

_DEFAULT_LRS = [1e-3, 2.5e-3, 6.3e-3, 1.6e-2, 4e-2, 1e-1]


def study_spec(parametrization: str, widths: list[int], lrs: list[float], epochs: int, n_train: int) -> dict:
    return {
        "name": f"mup-lr-{parametrization}",
        "objective": {"metric": "val_rel_l2", "direction": "minimize"},
        "data": {
            "name": "darcy",
            "params": {"fine_resolution": 141, "resolution": 29, "n_train": n_train, "n_val": 50, "n_test": 50},
        },
        "models": [
            {
                "name": "fno2d",
                "label": f"width{width}",
                "params": {
                    "width": width,
                    "modes": 8,
                    "n_layers": 4,
                    "padding": 5,
                    "projection_width": 32,
                    "parametrization": parametrization,
                    "base_width": widths[0],
                },
            }
            for width in widths
        ],
        "search": {"optimizer": "adam", "lr": {"choices": lrs}, "batch_size": 10, "scheduler": "cosine"},
        "trainer": {"max_epochs": epochs, "seed": 0, "num_threads": 1},
        "sampler": "grid",
        "pruner": "none",
    }


def main() -> None:
    import optuna

    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--lrs", type=float, nargs="+", default=_DEFAULT_LRS)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--parametrizations", nargs="+", default=["standard", "mup"])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="mup-lr-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    storage, tracking = f"sqlite:///{args.out}/optuna.db", f"sqlite:///{args.out}/mlflow.db"
    for parametrization in args.parametrizations:
        spec = study_spec(parametrization, args.widths, args.lrs, args.epochs, args.n_train)
        run_study(parse_study(yaml.safe_dump(spec, sort_keys=False), "bench/mup_lr.py"), storage, tracking)
        trials = optuna.load_study(study_name=spec["name"], storage=storage).trials
        errors = {(t.params["model"], t.params["lr"]): t.values[0] for t in trials if t.values is not None}
        print(f"\n{parametrization}: val_rel_l2 after {args.epochs} epochs (best per width in bold)")
        print("| width | " + " | ".join(f"lr {lr:g}" for lr in args.lrs) + " | best lr |")
        print("| --- " * (len(args.lrs) + 2) + "|")
        for width in args.widths:
            row = [errors.get((f"width{width}", lr), float("nan")) for lr in args.lrs]
            best = min(range(len(row)), key=lambda i: row[i])
            cells = [f"**{v:.4f}**" if i == best else f"{v:.4f}" for i, v in enumerate(row)]
            print(f"| {width} | " + " | ".join(cells) + f" | {args.lrs[best]:g} |", flush=True)
    print(f"stores: {args.out}")


if __name__ == "__main__":
    main()
