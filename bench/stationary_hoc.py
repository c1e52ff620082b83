"""One class-incremental run of ``incremental_cnn`` on MNIST-5k outside the runner (no Optuna, no MLflow; one
validation at the end): the compatibility matrix of the test split, AC, AM and the last model's accuracy.

    python bench/stationary_hoc.py --classifier simplex --loss hoc --epochs 15 --n-tasks 5

The same model, task and data as ``studies/stationary_hoc.yaml``, for a quick look at one setting."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytorch_lightning as pl
import torch

from sweeplab.data import load_dataset
from sweeplab.data.datamodule import OperatorDataModule
from sweeplab_modules.registry import build_model
from sweeplab_modules.representations import average_compatibility, average_multimodel_accuracy
from sweeplab_modules.tasks.classification import ClassIncrementalLearning
from sweeplab_modules.training import TrainingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", choices=["simplex", "learned"], default="simplex")
    parser.add_argument("--loss", choices=["cross_entropy", "hoc"], default="hoc")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--n-tasks", type=int, default=5)
    parser.add_argument("--hoc-lambda", type=float, default=0.1)
    parser.add_argument("--held-out-classes", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)
    data = load_dataset("mnist5k", {"n_train": 3500, "n_val": 500, "n_test": 1000, "seed": 0})
    model = build_model(
        "incremental_cnn", 1, 10, width=16, n_blocks=3, n_tasks=args.n_tasks, replay_per_class=20,
        classifier=args.classifier, hoc_lambda=args.hoc_lambda, held_out_classes=args.held_out_classes,
    )  # fmt: skip
    config = TrainingConfig(lr=3e-3, batch_size=128, loss=args.loss)
    task = ClassIncrementalLearning(model, config, in_channels=1, out_channels=10)
    trainer = pl.Trainer(
        max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=args.epochs,
    )  # fmt: skip
    start = time.perf_counter()
    datamodule = OperatorDataModule(data, batch_size=128)
    trainer.fit(task, datamodule=datamodule)
    trainer.test(task, datamodule=datamodule, verbose=False)
    matrix = task.compatibility_matrix("test")
    np.set_printoptions(precision=3, suppress=True)
    print(f"{vars(args)}\ncompatibility matrix (test):\n{matrix}")
    print(
        f"AC {average_compatibility(matrix):.3f}  AM {average_multimodel_accuracy(matrix):.3f}  "
        f"test acc {float(trainer.callback_metrics['test_acc']):.3f}  {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
