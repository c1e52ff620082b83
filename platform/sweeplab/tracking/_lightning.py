"""A pytorch_lightning logger that feeds a MetricBuffer (epoch-level metrics, step = epoch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from sweeplab.tracking._mlflow import MetricBuffer


class BufferedMlflowLogger(Logger):
    """Lightning's MLFlowLogger writes each value synchronously and creates its own runs; this one writes into
    the trial's child run through a buffer. Parameters are logged by the runner, not here, and the runner flushes
    the buffer when the trial ends, however it ends (not at the end of each of Lightning's fit and test).
    ``step_offset``: the epochs of the trial's earlier stages, so that a later stage's curves continue theirs."""

    def __init__(self, buffer: MetricBuffer) -> None:
        super().__init__()
        self.buffer = buffer
        self.last: dict[str, float] = {}
        self.step_offset = 0

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self.buffer.run_id

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        # Lightning adds the epoch to epoch-level metrics; it is the natural x axis of a sweep's curves.
        x = self.step_offset + (int(metrics["epoch"]) if "epoch" in metrics else int(step or 0))
        self.last.update(values)
        self.buffer.add(values, step=x)
