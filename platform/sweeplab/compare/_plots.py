"""The comparison's plots: PNG (matplotlib, Agg) for papers and the report, interactive plotly where a person would
rather explore (optimisation history, parallel coordinates, Pareto fronts). Optuna's own plots where they exist."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeplab.compare._aggregate import PARETO_COSTS, Comparison, pareto_front, pareto_points
from sweeplab.compare._records import StudyRecords
from sweeplab.spec import MODEL_PARAM

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    from sweeplab.compare._cka import CkaMatrix

# fANOVA fits a random forest to the trials: with fewer it reports noise as importance.
MIN_TRIALS_FOR_IMPORTANCE = 5
IMPORTANCE_SEED = 0
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
_COST_AXES = {"n_params": "parameters", "fit_seconds": "training time (s)"}


@dataclass(frozen=True)
class Plot:
    """One plot of the report: a PNG, an interactive plotly figure, or a note saying why there is neither."""

    key: str
    """File stem, unique in the comparison: ``<study>-<kind>[-<architecture>]``."""
    title: str
    study: str
    png: bytes | None = None
    figure: go.Figure | None = None
    note: str | None = None


def architecture_colors(comparison: Comparison) -> dict[str, str]:
    """One colour per architecture, the same in every plot."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(comparison.architectures)}


def study_plots(records: StudyRecords, comparison: Comparison) -> list[Plot]:
    colors = architecture_colors(comparison)
    view = metric_view(records)
    return [
        optimisation_history(records, view),
        *parallel_coordinates(records, view),
        importances(records, view),
        pareto_plot(records, colors),
        learning_curves(records, comparison, colors),
    ]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


# -- a study seen through the compared metric --------------------------------------------------------------------
def metric_view(records: StudyRecords) -> optuna.Study:
    """An in-memory copy of the study whose trials carry the compared metric as their single value, in the original
    trial order (so trial numbers match): Optuna's plots and importance evaluators then work for any metric and
    for multi-objective studies. Trials that are not complete keep their state (pruned) or read as failed."""
    import optuna
    from optuna.trial import TrialState, create_trial

    view = optuna.create_study(direction=records.direction, study_name=records.name)
    originals = {t.number: t for t in records.study.get_trials(deepcopy=False)}
    copies = []
    for record in sorted(records.trials, key=lambda r: r.number):
        original = originals[record.number]
        if record.state == "COMPLETE" and record.value is not None:
            state, value = TrialState.COMPLETE, record.value
        else:
            state, value = (TrialState.PRUNED if record.state == "PRUNED" else TrialState.FAIL), None
        copies.append(
            create_trial(
                state=state,
                value=value,
                params=original.params,
                distributions=original.distributions,
                user_attrs={"architecture": record.architecture},
            )
        )
    view.add_trials(copies)
    return view


def _complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _subset(view: optuna.Study, architecture: str) -> optuna.Study:
    """The complete trials of one architecture, as a study of their own."""
    import optuna

    subset = optuna.create_study(direction=view.direction)
    subset.add_trials([t for t in _complete_trials(view) if t.user_attrs["architecture"] == architecture])
    return subset


def _architectures(records: StudyRecords) -> list[str]:
    return list(dict.fromkeys(t.architecture for t in records.trials))


# -- Optuna's plots --------------------------------------------------------------------------------------------
@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's matplotlib plots are marked experimental and warn at every call."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # matplotlib on an axis whose values are all equal
        yield


def optimisation_history(records: StudyRecords, view: optuna.Study) -> Plot:
    _pyplot()  # before Optuna's matplotlib module imports pyplot
    from optuna.visualization import matplotlib as optuna_mpl
    from optuna.visualization import plot_optimization_history

    key, title = f"{slug(records.name)}-history", f"{records.name}: optimisation history"
    if not _complete_trials(view):
        return Plot(key, title, records.name, note="no complete trial yet")
    with _quiet_optuna():
        figure = plot_optimization_history(view, target_name=records.metric)
        png = _png(lambda: optuna_mpl.plot_optimization_history(view, target_name=records.metric).figure)
    return Plot(key, title, records.name, png=png, figure=_titled(figure, title))


def parallel_coordinates(records: StudyRecords, view: optuna.Study) -> list[Plot]:
    """One per architecture: its own (conditional) dimensions only exist in its trials."""
    _pyplot()  # before Optuna's matplotlib module imports pyplot
    from optuna.visualization import matplotlib as optuna_mpl
    from optuna.visualization import plot_parallel_coordinate

    plots = []
    for architecture in _architectures(records):
        key = f"{slug(records.name)}-parallel-{slug(architecture)}"
        title = f"{records.name}: parallel coordinates, {architecture}"
        subset = _subset(view, architecture)
        n_complete = len(subset.trials)
        if n_complete < 2:
            plots.append(Plot(key, title, records.name, note=f"{n_complete} complete trial(s): needs at least 2"))
            continue
        names = sorted({p for t in subset.trials for p in t.params} - {MODEL_PARAM})  # constant here
        with _quiet_optuna():
            figure = plot_parallel_coordinate(subset, params=names, target_name=records.metric)
            png = _png(
                lambda s=subset, n=names: (
                    optuna_mpl.plot_parallel_coordinate(s, params=n, target_name=records.metric).figure
                )
            )
        plots.append(Plot(key, title, records.name, png=png, figure=_titled(figure, title)))
    return plots


def importances(records: StudyRecords, view: optuna.Study) -> Plot:
    """fANOVA importances (Optuna's evaluator, fixed seed): over all trials for the architecture choice and shared
    dimensions, and per architecture for its own dimensions. Panels with too few trials say so."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    key, title = f"{slug(records.name)}-importances", f"{records.name}: hyperparameter importances (fANOVA)"
    panels: list[tuple[str, optuna.Study]] = [(a, _subset(view, a)) for a in _architectures(records)]
    if len(panels) > 1:
        panels.insert(0, ("all architectures", view))
    results: list[tuple[str, dict[str, float] | str]] = []
    for label, study in panels:
        n_complete = len(_complete_trials(study))
        if n_complete < MIN_TRIALS_FOR_IMPORTANCE:
            results.append((label, f"{n_complete} complete trials: needs at least {MIN_TRIALS_FOR_IMPORTANCE}"))
            continue
        # Within one architecture the architecture choice is constant: leave it out of its panel.
        names = None if study is view else sorted({p for t in study.trials for p in t.params} - {MODEL_PARAM})
        try:
            evaluator = FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
            found = get_param_importances(study, evaluator=evaluator, params=names)
        except (ValueError, RuntimeError) as error:  # e.g. no parameter varied
            results.append((label, str(error)))
            continue
        results.append((label, found) if found else (label, "no parameter varied"))
    if all(isinstance(result, str) for _, result in results):
        return Plot(key, title, records.name, note="; ".join(f"{label}: {result}" for label, result in results))

    figure, axes = _subplots(len(results), (4.2 * len(results), 3.4))
    for axis, (label, result) in zip(axes[0], results, strict=True):
        axis.set_title(label, fontsize=10)
        if isinstance(result, str):
            axis.text(0.5, 0.5, result, ha="center", va="center", wrap=True, fontsize=8, transform=axis.transAxes)
            axis.set_axis_off()
            continue
        names = list(result)[::-1]
        axis.barh(names, [result[n] for n in names], color="#1f77b4")
        axis.set_xlabel("importance")
        axis.set_xlim(0, 1)
    figure.suptitle(title, fontsize=11)
    return Plot(key, title, records.name, png=_png(lambda: figure))


# -- our own plots ---------------------------------------------------------------------------------------------
def pareto_plot(records: StudyRecords, colors: dict[str, str]) -> Plot:
    """The metric against parameter count and against training time: every complete trial, the front joined."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    key, title = f"{slug(records.name)}-pareto", f"{records.name}: {records.metric} against cost (Pareto fronts)"
    by_cost = {cost: pareto_points(records, cost) for cost in PARETO_COSTS}
    if not any(by_cost.values()):
        return Plot(key, title, records.name, note="no complete trial with a parameter count or a training time")
    params = {t.number: t.params for t in records.trials}
    figure, axes = _subplots(len(by_cost), (10, 4))
    interactive = make_subplots(rows=1, cols=len(by_cost), subplot_titles=[_COST_AXES[c] for c in by_cost])
    for column, (cost, points) in enumerate(by_cost.items(), start=1):
        axis = axes[0][column - 1]
        front = pareto_front(points, records.direction)
        for architecture in dict.fromkeys(p.architecture for p in points):
            mine = [p for p in points if p.architecture == architecture]
            color = colors.get(architecture, "#333333")
            axis.scatter([p.cost for p in mine], [p.value for p in mine], s=22, color=color, label=architecture)
            interactive.add_trace(
                go.Scatter(
                    x=[p.cost for p in mine],
                    y=[p.value for p in mine],
                    mode="markers",
                    name=architecture,
                    legendgroup=architecture,
                    showlegend=column == 1,
                    marker={"color": color, "size": 8},
                    hovertext=[f"trial {p.trial}<br>{_hover_params(params[p.trial])}" for p in mine],
                ),
                row=1,
                col=column,
            )
        axis.plot([p.cost for p in front], [p.value for p in front], drawstyle="steps-post", color="black", lw=1)
        interactive.add_trace(
            go.Scatter(
                x=[p.cost for p in front],
                y=[p.value for p in front],
                mode="lines",
                line={"shape": "hv", "color": "black", "width": 1},
                name="Pareto front",
                legendgroup="front",
                showlegend=column == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=column,
        )
        for point in front:
            axis.annotate(
                f"#{point.trial}", (point.cost, point.value), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        positive = all(p.cost > 0 for p in points) and points
        if positive:
            axis.set_xscale("log")
        axis.set_xlabel(_COST_AXES[cost])
        axis.set_ylabel(records.metric)
        interactive.update_xaxes(title_text=_COST_AXES[cost], type="log" if positive else "linear", row=1, col=column)
        interactive.update_yaxes(title_text=records.metric, row=1, col=column)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    interactive.update_layout(title=title, height=420)
    return Plot(key, title, records.name, png=_png(lambda: figure), figure=interactive)


def learning_curves(records: StudyRecords, comparison: Comparison, colors: dict[str, str]) -> Plot:
    """Per epoch, the objective's validation curve and the training loss of each architecture's best trial."""
    _pyplot()
    from matplotlib.ticker import MaxNLocator

    key = f"{slug(records.name)}-learning-curves"
    title = f"{records.name}: learning curves of each architecture's best trial (by {comparison.metric})"
    keys = [records.objective_metric, "train_loss"]
    best = [
        (s.architecture, s.best_run_id, s.best_trial)
        for s in comparison.summaries
        if s.study == records.name and s.best_run_id is not None
    ]
    if not best:
        return Plot(key, title, records.name, note="no complete trial with an MLflow run")
    figure, axes = _subplots(len(keys), (10, 3.8))
    drawn = False
    for axis, metric in zip(axes[0], keys, strict=True):
        for architecture, run_id, trial in best:
            history = records.metric_history(run_id, metric)  # type: ignore[arg-type]
            if not history:
                continue
            drawn = True
            steps, values = zip(*history, strict=True)
            label = f"{architecture} (trial {trial})"
            axis.plot([s + 1 for s in steps], values, marker="o", ms=3, color=colors.get(architecture), label=label)
        values = [v for line in axis.lines for v in line.get_ydata()]
        if values and min(values) > 0 and max(values) > 10 * min(values):  # log only where it spreads decades
            axis.set_yscale("log")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric, fontsize=10)
    if not drawn:
        _pyplot().close(figure)
        return Plot(key, title, records.name, note=f"the best runs logged no {' or '.join(keys)} history")
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    return Plot(key, title, records.name, png=_png(lambda: figure))


# -- helpers ---------------------------------------------------------------------------------------------------
def _hover_params(params: dict[str, Any]) -> str:
    return "<br>".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _titled(figure: go.Figure, title: str) -> go.Figure:
    figure.update_layout(title=title)
    return figure


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, and no display needed
    import matplotlib.pyplot as plt

    return plt


def _subplots(columns: int, size: tuple[float, float]) -> tuple[Figure, Any]:
    """A row of axes in matplotlib's default style (Optuna's matplotlib module switches pyplot to ggplot)."""
    plt = _pyplot()
    with plt.style.context("default"):
        return plt.subplots(1, columns, figsize=size, squeeze=False, layout="constrained")


def _png(draw: Callable[[], Figure]) -> bytes:
    """Render a matplotlib figure to PNG bytes and free it (pyplot keeps every open figure alive)."""
    plt = _pyplot()
    figure = draw()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def cka_heatmap(matrix: CkaMatrix) -> Plot:
    """Linear and debiased CKA between the best models of a study's architectures, side by side, values written in."""
    panels = [("linear CKA", matrix.linear)] + ([("debiased CKA", matrix.debiased)] if matrix.debiased else [])
    size = len(matrix.architectures)

    def draw() -> Figure:
        import numpy as np

        side = 1.2 + 0.6 * size
        figure, axes = _subplots(len(panels), (side * len(panels) + 1.0, side))
        for ax, (title, values) in zip(axes[0], panels, strict=True):
            array = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
            image = ax.imshow(array, vmin=0.0, vmax=1.0, cmap="viridis")
            for (i, j), value in np.ndenumerate(array):
                ax.text(
                    j,
                    i,
                    "–" if np.isnan(value) else f"{value:.2f}",
                    ha="center",
                    va="center",
                    color="black" if value > 0.6 else "white",
                    fontsize=8,
                )
            ax.set_xticks(range(size), matrix.architectures, rotation=45, ha="right")
            ax.set_yticks(range(size), matrix.architectures)
            ax.set_title(title)
        figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
        figure.suptitle(f"{matrix.study}: CKA of the best models ({matrix.n_samples} test samples)")
        return figure

    return Plot(f"{slug(matrix.study)}-cka", f"CKA: {matrix.study}", matrix.study, png=_png(draw))
