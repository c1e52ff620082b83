"""The MLflow tracker on a real SQLite store: batched writes past MLflow's per-call limits lose nothing."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeplab.tracking import MetricBuffer, Tracker


def test_log_splits_past_mlflows_limits_and_keeps_every_row(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "limits")
    run_id = tracker.open_run("run", {})
    params = {f"p{i}": i for i in range(250)}  # 100 params a call
    tags = {f"t{i}": i for i in range(150)}  # 100 tags a call
    tracker.log(run_id, metrics={"m": 1.5}, params=params, tags=tags, step=3)
    data = MlflowClient(uri).get_run(run_id).data
    assert {k: int(v) for k, v in data.params.items()} == params
    assert {k: int(v) for k, v in data.tags.items() if k.startswith("t")} == tags
    assert data.metrics == {"m": 1.5}


def test_metric_buffer_writes_when_flushed_and_in_order(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "buffer")
    run_id = tracker.open_run("run", {})
    buffer = MetricBuffer(tracker, run_id, interval=3600.0)
    for epoch in range(5):
        buffer.add({"loss": 1.0 / (epoch + 1)}, step=epoch)
    history = MlflowClient(uri).get_metric_history(run_id, "loss")
    assert history == []  # nothing written before the interval or a flush
    buffer.flush()
    history = MlflowClient(uri).get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1.0 / (e + 1)) for e in range(5)]
