"""Overhead of one sweeplab trial against a hand-written PyTorch loop doing the same work.

Both sides train the same FNO-2D from the same seed on the same quickstart Darcy data: the same epochs and
mini-batches, Adam with a cosine schedule, relative L2 loss, a validation pass after every epoch and a test pass
at the end. The sweeplab side is a real trial of a running study (Optuna ask/tell, an MLflow child run with its
params and buffered metrics in SQLite, Lightning with the pruning and guard callbacks, a checkpoint). One-time
costs of a study (imports, database creation, data generation, the parent run) are left out: the study is opened
once and warmed up with one trial, then each measured trial is one more trial of it, as in a sweep. The two sides
alternate, and the ratio of each pair is reported (the machine is shared and noisy: ratios, not seconds).

A third side, Lightning alone, runs the hand-written computation as a bare LightningModule in a Trainer without
logger or callbacks: the share of the overhead that is Lightning's own loop, which every trial runs.

``--fixed-cost`` measures what a trial costs beyond its computation instead: the three sides with a one-layer,
width-2 FNO (the computation negligible), the differences between them, sweeplab's share split by where its
time goes (each part's own time, without the parts it calls), and what a hand-written Optuna + MLflow script
records per trial in the same databases (``StoresAlone``).

``--log-cost`` measures what one of Lightning's ``self.log`` calls of an epoch value costs.

    python bench/overhead.py [--repeats 6] [--epochs 15] [--threads N] [--clock wall|cpu] [--fixed-cost | --log-cost]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from sweeplab.data import load_dataset
from sweeplab.run import StudyRunner
from sweeplab.spec import load_study
from sweeplab.tracking import TrackedRun
from sweeplab_modules.losses import relative_l2
from sweeplab_modules.operators.fno import FNO2d

QUICKSTART_DATA = {"fine_resolution": 141, "resolution": 29, "n_train": 200, "n_val": 50, "n_test": 50, "seed": 0}
# The smallest and the largest FNO of the quickstart's search space.
CONFIGS = {
    "small (width 16, modes 6, batch 10)": {"width": 16, "modes": 6, "n_layers": 4, "padding": 5, "batch_size": 10},
    "large (width 32, modes 12, batch 20)": {"width": 32, "modes": 12, "n_layers": 4, "padding": 5, "batch_size": 20},
}
# The computation negligible: what remains is each side's fixed cost per trial.
NEGLIGIBLE = {"width": 2, "modes": 2, "n_layers": 1, "padding": 0, "batch_size": 10}
MODEL_KEYS = ("width", "modes", "n_layers", "padding")
LR, SEED = 3e-3, 0
SPLITS = ("train", "val", "test")
# Wall time by default; --clock cpu takes the process's CPU time, steadier when other programs share the cores.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


@functools.cache
def quickstart_data() -> Any:
    """The quickstart's Darcy set (generated or read once)."""
    return load_dataset("darcy", QUICKSTART_DATA)


@functools.cache
def quickstart_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The quickstart's Darcy splits as tensors (read once; neither side writes to them)."""
    data = quickstart_data()
    return {s: (torch.from_numpy(getattr(data, f"x_{s}")), torch.from_numpy(getattr(data, f"y_{s}"))) for s in SPLITS}


def model_params(config: dict[str, int]) -> dict[str, int]:
    return {key: config[key] for key in MODEL_KEYS}


def hand_written(config: dict[str, int], epochs: int) -> float:
    """What a user writes without a platform; returns seconds."""
    splits = quickstart_splits()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (splits[s] for s in SPLITS)
    started = clock()
    torch.manual_seed(SEED)
    model = FNO2d(1, 1, **model_params(config))
    x_mean, x_std = x_train.mean(), x_train.std()
    y_mean, y_std = y_train.mean(), y_train.std()

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model((x - x_mean) / x_std) * y_std + y_mean

    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(SEED)
    batch = config["batch_size"]
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss = relative_l2(predict(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            relative_l2(predict(x_val), y_val).item()
    with torch.no_grad():
        relative_l2(predict(x_test), y_test).item()
    return clock() - started


def bare_trainer(epochs: int) -> Any:
    """A CPU Trainer with no logger, callbacks, checkpoint or progress display."""
    import pytorch_lightning as pl

    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def lightning_alone(config: dict[str, int], epochs: int) -> float:
    """``hand_written``'s computation in a bare LightningModule and Trainer (no logger, callbacks or checkpoint)."""
    import pytorch_lightning as pl

    from sweeplab.data.datamodule import InMemoryBatches

    splits = quickstart_splits()
    started = clock()
    torch.manual_seed(SEED)
    x_train, y_train = splits["train"]

    class Bare(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = FNO2d(1, 1, **model_params(config))
            self.scales = (x_train.mean(), x_train.std(), y_train.mean(), y_train.std())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x_mean, x_std, y_mean, y_std = self.scales
            return self.model((x - x_mean) / x_std) * y_std + y_mean

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return relative_l2(self(batch[0]), batch[1])

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            relative_l2(self(batch[0]), batch[1]).item()

        test_step = validation_step

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.Adam(self.parameters(), lr=LR)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            return {"optimizer": optimizer, "lr_scheduler": schedule}

    trainer = bare_trainer(epochs)
    module = Bare()
    whole = {s: InMemoryBatches(*splits[s], len(splits[s][0]), shuffle=False) for s in ("val", "test")}
    trainer.fit(module, InMemoryBatches(*splits["train"], config["batch_size"], shuffle=True, seed=SEED), whole["val"])
    trainer.test(module, whole["test"], verbose=False)
    return clock() - started


def task_alone(study: Any, epochs: int, run: Any = None) -> float:
    """The trial's own module, the study's task around its model (sweeplab's operator task: normalisers fitted
    per grid point, relative H1 beside relative L2, epoch means logged through ``self.log``), in a Trainer
    without callbacks; with ``run`` (a TrackedRun), the trial's logger too (metric rows buffered into the run)."""
    import optuna
    import pytorch_lightning as pl

    from sweeplab.data.datamodule import OperatorDataModule
    from sweeplab.tracking._lightning import BufferedMlflowLogger
    from sweeplab.training._trial import build_seeded_model, build_task

    started = clock()
    plan = study.sample(optuna.create_study().ask())  # the one point of the study's search
    task = build_task(study, plan, build_seeded_model(study, plan))
    data = OperatorDataModule(quickstart_data(), batch_size=plan.training.batch_size, seed=SEED)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=BufferedMlflowLogger(run.metrics) if run is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        inference_mode=False,
    )
    trainer.fit(task, datamodule=data)
    trainer.test(task, datamodule=data, verbose=False)
    return clock() - started


def study_text(config: dict[str, int], epochs: int, threads: int) -> str:
    """The same training as ``hand_written``, as a one-point study (with a pruner, as a real sweep has)."""
    study = {
        "name": "overhead",
        "objective": {"metric": "val_rel_l2"},
        "data": {"name": "darcy", "params": QUICKSTART_DATA},
        "models": [{"name": "fno2d", "params": model_params(config)}],
        "search": {"optimizer": "adam", "lr": LR, "batch_size": config["batch_size"], "scheduler": "cosine"},
        "trainer": {"max_epochs": epochs, "seed": SEED, "num_threads": threads},
        "sampler": "random",
        "pruner": "median",
        "budget": {"n_trials": 1},
    }
    return yaml.safe_dump(study, sort_keys=False)


class SweeplabTrials:
    """A study opened in a temporary folder; ``one_more()`` runs and times one further trial of it: Optuna's
    ask and tell, the trial's MLflow run, Lightning's fit and test, the checkpoint of a new best trial."""

    def __init__(self, config: dict[str, int], epochs: int, threads: int, folder: Path) -> None:
        path = folder / "study.yaml"
        path.write_text(study_text(config, epochs, threads))
        stores = (f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db")
        self.runner = StudyRunner(load_study(path), *stores, n_trials=10**6, console=Console(quiet=True))

    @contextlib.contextmanager
    def opened(self) -> Iterator[SweeplabTrials]:
        with self.runner.session() as self.optuna_study:
            self.one_more()  # warm-up: the first trial's imports and lazily created tables
            yield self

    def one_more(self) -> float:
        started = clock()
        self.runner.run_trials(self.optuna_study, 1)
        return clock() - started


class StoresAlone:
    """What a hand-written Optuna + MLflow script records per trial, in the same two databases as the study:
    Optuna's ask, a report per epoch and tell; an MLflow run opened with its tags, its params written, its
    metric rows written in one batch, and closed. The least a trial recorded in these stores costs."""

    def __init__(self, folder: Path) -> None:
        import optuna
        from mlflow.tracking import MlflowClient

        self.study = optuna.create_study(study_name="stores-alone", storage=f"sqlite:///{folder}/optuna.db")
        self.client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
        self.experiment_id = self.client.create_experiment("stores-alone")

    def one_more(self, epochs: int, params: dict[str, Any]) -> float:
        from mlflow.entities import Metric, Param

        started = clock()
        trial = self.study.ask()
        run_id = self.client.create_run(self.experiment_id, tags={"optuna.trial": str(trial.number)}).info.run_id
        self.client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])
        metrics = []
        for epoch in range(epochs):
            value = 1.0 / (epoch + 1)
            trial.report(value, epoch)
            now = int(time.time() * 1000)
            metrics += [Metric(key, value, now, epoch) for key in ("train_loss", "val_loss", "val_rel_l2", "lr")]
        self.client.log_batch(run_id, metrics=metrics)
        self.client.set_terminated(run_id)
        self.study.tell(trial, 1.0 / epochs)
        return clock() - started


class Breakdown:
    """Where a sweeplab trial's own time goes: each wrapped function's time without that of the wrapped functions
    it calls, summed by label, while ``installed``."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._stack: list[list[Any]] = []  # [label, time of entry or of the last return from a nested part]

    def _timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = clock()
            if self._stack:
                self.seconds[self._stack[-1][0]] += now - self._stack[-1][1]
            self._stack.append([label, now])
            try:
                return function(*args, **kwargs)
            finally:
                now = clock()
                done, started = self._stack.pop()
                self.seconds[done] += now - started
                if self._stack:
                    self._stack[-1][1] = now

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[Breakdown]:
        import optuna.study._optimize as optimize

        from sweeplab.run._recording import StudyRecorder
        from sweeplab.run._session import StudyRunner
        from sweeplab.tracking._mlflow import MetricBuffer
        from sweeplab.training._callbacks import EpochCallback, GuardCallback, PruningCallback

        parts = [
            (optimize, "_run_trial", "Optuna: ask, tell, sampling"),
            (StudyRunner, "_objective", "trial set-up (plan sampled; model, task, Trainer built)"),
            (StudyRecorder, "open_trial_run", "trial run opened (MLflow run, params, tags)"),
            (PruningCallback, "on_validation_end", "Optuna: report + pruning decision, per epoch"),
            (PruningCallback, "write_reports", "Optuna: report + pruning decision, per epoch"),
            (GuardCallback, "on_train_batch_end", "non-finite guard, per step"),
            (EpochCallback, "on_train_batch_end", "progress display, per step"),
            (EpochCallback, "on_validation_end", "progress display, per epoch"),
            (MetricBuffer, "flush", "metric rows written (MLflow log_batch)"),
            (StudyRunner, "_after_trial", "after the trial (best so far, checkpoint, run closed)"),
        ]
        parts = [part for part in parts if hasattr(part[0], part[1])]  # an older commit may lack a part
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in parts]
        for owner, name, label in parts:
            setattr(owner, name, self._timed(label, getattr(owner, name)))
        # Lightning's work inside the trial is the other sides' too: timed apart, so it is not sweeplab's share.
        import pytorch_lightning as pl

        lightning = {
            "fit": "Lightning fit and test (computation included)",
            "test": "Lightning fit and test (computation included)",
            "save_checkpoint": "checkpoint saved",
        }
        originals += [(pl.Trainer, name, getattr(pl.Trainer, name)) for name in lightning]
        for name, label in lightning.items():
            setattr(pl.Trainer, name, self._timed(label, getattr(pl.Trainer, name)))
        try:
            yield self
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)


def fixed_cost(repeats: int, epochs: int, threads: int) -> None:
    """The three sides with a negligible computation, interleaved; differences and sweeplab's breakdown."""
    config = NEGLIGIBLE
    with (
        tempfile.TemporaryDirectory() as folder,
        SweeplabTrials(config, epochs, threads, Path(folder)).opened() as sweeplab,
    ):
        stores = StoresAlone(Path(folder))
        params = {**model_params(config), "batch_size": config["batch_size"], "lr": LR, "seed": SEED}
        study, tracker = sweeplab.runner.study, sweeplab.runner.recorder.tracker
        run = TrackedRun(tracker, tracker.open_run("task-alone", {}))
        hand_written(config, epochs)
        lightning_alone(config, epochs)
        stores.one_more(epochs, params)
        task_alone(study, epochs)
        runs, parts, recording, task, logged = [], [], [], [], []
        for _ in range(repeats):
            hand, bare = hand_written(config, epochs), lightning_alone(config, epochs)
            with Breakdown().installed() as breakdown:
                ours = sweeplab.one_more()
            runs.append((hand, bare, ours))
            parts.append(breakdown.seconds)
            recording.append(stores.one_more(epochs, params))
            task.append(task_alone(study, epochs))
            logged.append(task_alone(study, epochs, run))
    hand, bare, ours = (list(side) for side in zip(*runs, strict=True))
    ms = lambda seconds: f"{1000 * seconds:.0f}"  # noqa: E731
    differences = "Lightning alone - hand ms | sweeplab - Lightning alone ms"
    print(f"| hand-written s | Lightning alone s | sweeplab s | {differences} |")
    print("| --- | --- | --- | --- | --- |")
    lightning_cost = statistics.median(b - h for h, b, _ in runs)
    sweeplab_cost = statistics.median(s - b for _, b, s in runs)
    medians = [f"{statistics.median(side):.3f}" for side in (hand, bare, ours)]
    print(f"| {' | '.join(medians)} | {ms(lightning_cost)} | {ms(sweeplab_cost)} |\n")
    print("sweeplab's trial by part (own time, medians over the runs, ms per trial):\n")
    print("| part | ms |")
    print("| --- | --- |")
    labels = {label for seconds in parts for label in seconds}
    by_part = {label: statistics.median(p[label] for p in parts) for label in labels}
    for label, seconds in sorted(by_part.items(), key=lambda item: -item[1]):
        print(f"| {label} | {ms(seconds)} |")
    outside = statistics.median(o - sum(p.values()) for o, p in zip(ours, parts, strict=True))
    print(f"| outside the parts (Optuna's loop, callbacks' calls) | {ms(outside)} |")
    recorded = ms(statistics.median(recording))
    print(f"\nOptuna + MLflow alone (a hand-written script's recording), ms per trial: {recorded}")
    print("\nInside Lightning's fit and test, by what the trial adds to the Lightning-alone side (medians of the")
    print("differences from it, ms): the trial's module (its task around the model) in a bare Trainer; with the")
    print("trial's logger too; the trial's own fit and test (its callbacks too; building the model, task and Trainer")
    print("not in it):\n")
    print("| trial's module | + its logger | the trial's fit and test |")
    print("| --- | --- | --- |")
    fits = [p["Lightning fit and test (computation included)"] for p in parts]
    columns = [task, logged, fits]
    differences = [
        ms(statistics.median(side - b for side, (_, b, _) in zip(column, runs, strict=True))) for column in columns
    ]
    print(f"| {' | '.join(differences)} |")


def log_cost(repeats: int) -> None:
    """What one ``self.log`` of an epoch value costs in Lightning's loop: a module with no work, 100 epochs, logging
    0 or 10 values at each validation epoch's end, interleaved; the medians' difference per call."""
    import pytorch_lightning as pl

    from sweeplab.data.datamodule import InMemoryBatches

    epochs, values = 100, 10

    class Logging(pl.LightningModule):
        def __init__(self, n_values: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)
            self.n_values = n_values

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return (self.linear(batch[0]) - batch[1]).square().mean()

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            pass

        def on_validation_epoch_end(self) -> None:
            for k in range(self.n_values):
                self.log(f"value_{k}", torch.tensor(1.0), on_epoch=True)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.0)

    data = torch.zeros(4, 1)
    batches = InMemoryBatches(data, data, batch_size=4, shuffle=False)

    def fit(n_values: int) -> float:
        trainer = bare_trainer(epochs)
        started = clock()
        trainer.fit(Logging(n_values), batches, batches)
        return clock() - started

    fit(values)  # warm-up
    runs = [(fit(0), fit(values)) for _ in range(repeats)]
    per_call = (statistics.median(with_values for _, with_values in runs) - statistics.median(r[0] for r in runs)) / (
        epochs * values
    )
    print(f"Lightning's self.log of an epoch value: {1000 * per_call:.3f} ms per call (medians of {repeats} fits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="measured pairs per configuration")
    parser.add_argument("--epochs", type=int, default=15, help="epochs per trial (the quickstart's)")
    parser.add_argument("--threads", type=int, help="torch CPU threads for both sides (default: one per core)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="what is timed (default wall)")
    parser.add_argument("--fixed-cost", action="store_true", help="the cost per trial beyond the computation")
    parser.add_argument("--log-cost", action="store_true", help="the cost of one self.log of an epoch value")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)  # the runner sets the study's trainer.num_threads: the same number
    quickstart_splits()  # generated and read once, outside the timings
    print(
        f"torch {torch.__version__}, {threads} threads, {args.epochs} epochs, {args.repeats} runs, {args.clock} time\n"
    )
    if args.fixed_cost:
        fixed_cost(args.repeats, args.epochs, threads)
        return
    if args.log_cost:
        log_cost(args.repeats)
        return
    sides = "hand-written s | Lightning alone s | sweeplab s | Lightning alone / hand | sweeplab / hand"
    print(f"| configuration | {sides} | sweeplab / Lightning alone |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, config in CONFIGS.items():
        with (
            tempfile.TemporaryDirectory() as folder,
            SweeplabTrials(config, args.epochs, threads, Path(folder)).opened() as sweeplab,
        ):
            hand_written(config, args.epochs)  # warm-up of the same code paths
            lightning_alone(config, args.epochs)
            runs = [
                (hand_written(config, args.epochs), lightning_alone(config, args.epochs), sweeplab.one_more())
                for _ in range(args.repeats)
            ]
        hand, bare, ours = (list(side) for side in zip(*runs, strict=True))
        cells = [f"{statistics.median(side):.2f} ({min(side):.2f})" for side in (hand, bare, ours)]
        ratios = [
            f"{_ratio(statistics.median, side, base)} ({_ratio(min, side, base)})"
            for side, base in ((bare, hand), (ours, hand), (ours, bare))
        ]
        print(f"| {name} | {' | '.join(cells)} | {' | '.join(ratios)} |", flush=True)
        print(f"sweeplab / hand of each run: {', '.join(f'{s / h:.3f}' for h, _, s in runs)}", file=sys.stderr)
        paired = [s / b for _, b, s in runs]
        print(
            f"sweeplab / Lightning alone of each run: {', '.join(f'{r:.3f}' for r in paired)}; "
            f"their median {statistics.median(paired):.3f}",
            file=sys.stderr,
        )
    print("\nmedian (minimum) of the runs; ratios: of the medians (of the minimums)")


def _ratio(statistic: Callable[[list[float]], float], side: list[float], hand: list[float]) -> str:
    return f"{statistic(side) / statistic(hand):.3f}"


if __name__ == "__main__":
    main()
