"""The comparison's numbers: per architecture and study, across studies, and the Pareto fronts. Pure functions of
the trial records, so every number can be checked against trials with known values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.compare._confirm import Confirmation, confirmation
from sweeplab.compare._records import CompareError, StudyRecords, TransferRecord, TrialRecord
from sweeplab.spec import MODEL_PARAM

if TYPE_CHECKING:
    from sweeplab.compare._cka import CkaMatrix

# The costs a Pareto front trades the metric against, and how each is read off a trial.
PARETO_COSTS: dict[str, Callable[[TrialRecord], float | None]] = {
    "n_params": lambda trial: trial.n_params,
    "fit_seconds": lambda trial: trial.fit_seconds,
}


@dataclass(frozen=True)
class ArchitectureSummary:
    """One architecture in one study."""

    study: str
    architecture: str
    complete: int
    pruned: int
    failed: int
    """Failed by their own error; trials failed by an interrupt and queued again are not counted."""
    best_value: float | None
    best_trial: int | None
    best_run_id: str | None
    median: float | None
    """Median of the ``spread_n`` values the spread is taken over (see ``spread_over``)."""
    iqr: float | None
    """Interquartile range (75th - 25th percentile, linear interpolation) of the same values."""
    spread_n: int
    spread_over: str
    """``top-k``: the k best trials; ``seeds``: the seeds of the configuration with the best median."""
    n_params: int | None
    """Of the best trial."""
    seconds_per_epoch: float | None
    """Median over the complete trials (training only, validation included; test excluded)."""
    best_params: dict[str, Any] = field(default_factory=dict)
    """The best trial's searched values, architecture prefix removed (``fno.width`` -> ``width``)."""


@dataclass(frozen=True)
class ParetoPoint:
    study: str
    architecture: str
    trial: int
    value: float
    cost: float


@dataclass(frozen=True)
class Comparison:
    metric: str
    direction: str
    top_k: int
    studies: list[str]
    architectures: list[str]
    """Ordered by mean rank over the studies they appear in, then by name."""
    summaries: list[ArchitectureSummary]
    ranks: dict[str, dict[str, int]]
    """study -> architecture -> rank (1 = best; ties share a rank, the next rank is skipped)."""
    pareto: dict[str, dict[str, list[ParetoPoint]]]
    """study -> cost (``n_params``, ``fit_seconds``) -> the front, cheapest first."""
    confirmations: dict[str, Confirmation] = field(default_factory=dict)
    """study -> its confirmation stage's statistics (studies that declared ``confirm`` and ran it)."""
    transfers: dict[str, list[TransferRecord]] = field(default_factory=dict)
    """study -> its transfer runs (strategy transfer), the latest per architecture and target, by target."""
    cka: dict[str, CkaMatrix] = field(default_factory=dict)
    """study -> CKA between the best models of its architectures: representation studies only, added by
    ``with_cka`` (it loads the models)."""

    def summary(self, study: str, architecture: str) -> ArchitectureSummary | None:
        return next((s for s in self.summaries if s.study == study and s.architecture == architecture), None)

    def best_matrix(self) -> dict[str, dict[str, float | None]]:
        """architecture -> study -> best value (None where the architecture was not in the study or never completed)."""
        matrix: dict[str, dict[str, float | None]] = {}
        for architecture in self.architectures:
            row = {}
            for study in self.studies:
                found = self.summary(study, architecture)
                row[study] = found.best_value if found else None
            matrix[architecture] = row
        return matrix


def is_better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def summarise(records: StudyRecords, top_k: int) -> list[ArchitectureSummary]:
    """One summary per architecture that has at least one trial, in the order they first appear."""
    by_architecture: dict[str, list[TrialRecord]] = defaultdict(list)
    for trial in records.trials:
        by_architecture[trial.architecture].append(trial)
    return [
        _summarise_architecture(records.name, name, trials, records.direction, top_k)
        for name, trials in by_architecture.items()
    ]


def _summarise_architecture(
    study: str, architecture: str, trials: list[TrialRecord], direction: str, top_k: int
) -> ArchitectureSummary:
    scored = _ranked([t for t in trials if t.state == "COMPLETE" and t.value is not None], direction)
    best = scored[0] if scored else None
    seed_values = _best_seed_group(scored, direction)
    spread_values = seed_values or [t.value for t in scored[:top_k]]
    speeds = [s for s in (t.seconds_per_epoch for t in trials if t.state == "COMPLETE") if s is not None]
    return ArchitectureSummary(
        study=study,
        architecture=architecture,
        complete=sum(t.state == "COMPLETE" for t in trials),
        pruned=sum(t.state == "PRUNED" for t in trials),
        failed=sum(t.state == "FAIL" and not t.interrupted for t in trials),
        best_value=best.value if best else None,
        best_trial=best.number if best else None,
        best_run_id=best.run_id if best else None,
        median=float(np.median(spread_values)) if spread_values else None,
        iqr=_iqr(spread_values),
        spread_n=len(spread_values),
        spread_over="seeds" if seed_values else "top-k",
        n_params=best.n_params if best else None,
        seconds_per_epoch=float(np.median(speeds)) if speeds else None,
        best_params=_searched_params(best, architecture) if best else {},
    )


def _ranked(trials: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """Best first; a tie goes to the earlier trial (the one a sequential search found first)."""
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(trials, key=lambda t: (sign * float(t.value), t.number))  # type: ignore[arg-type]


def _iqr(values: Sequence[float]) -> float | None:
    if not values:
        return None
    q75, q25 = np.percentile(values, [75, 25])
    return float(q75 - q25)


def _configuration(trial: TrialRecord) -> tuple[tuple[str, str], ...]:
    """The searched values that define a configuration; a seed is what repeats, not what defines it."""
    return tuple(sorted((k, repr(v)) for k, v in trial.params.items() if k != "seed" and not k.endswith(".seed")))


def _seed_of(trial: TrialRecord) -> str | None:
    searched = next((v for k, v in trial.params.items() if k == "seed" or k.endswith(".seed")), None)
    return str(searched) if searched is not None else trial.seed


def _best_seed_group(scored: list[TrialRecord], direction: str) -> list[float]:
    """Values over seeds of the configuration repeated with at least two seeds whose median is best; empty when
    no configuration was repeated with different seeds."""
    groups: dict[tuple[tuple[str, str], ...], dict[str, float]] = defaultdict(dict)
    for trial in sorted(scored, key=lambda t: t.number):
        seed = _seed_of(trial)
        if seed is not None:
            groups[_configuration(trial)].setdefault(seed, float(trial.value))  # type: ignore[arg-type]
    repeated = [list(values.values()) for values in groups.values() if len(values) >= 2]
    if not repeated:
        return []
    sign = 1.0 if direction == "minimize" else -1.0
    return min(repeated, key=lambda values: sign * float(np.median(values)))


def _searched_params(trial: TrialRecord, architecture: str) -> dict[str, Any]:
    prefix = f"{architecture}."
    return {k.removeprefix(prefix): v for k, v in trial.params.items() if k != MODEL_PARAM}


def ranks(summaries: Sequence[ArchitectureSummary], direction: str) -> dict[str, int]:
    """Competition ranking of one study's architectures by best value ("1224"); those that never completed a trial
    get no rank."""
    values = {s.architecture: s.best_value for s in summaries if s.best_value is not None}
    return {
        name: 1 + sum(is_better(other, value, direction) for other in values.values()) for name, value in values.items()
    }


def pareto_front(points: Sequence[ParetoPoint], direction: str) -> list[ParetoPoint]:
    """The points no other point beats on both the metric and the cost (cost is always minimised); equal points
    are all kept. Cheapest first."""
    sign = 1.0 if direction == "minimize" else -1.0
    ordered = sorted(points, key=lambda p: (p.cost, sign * p.value, p.trial))
    front: list[ParetoPoint] = []
    for point in ordered:
        dominated = any(
            q.cost <= point.cost
            and sign * q.value <= sign * point.value
            and (q.cost, q.value) != (point.cost, point.value)
            for q in front
        )
        if not dominated:
            front.append(point)
    return front


def compare(all_records: Sequence[StudyRecords], top_k: int = 5) -> Comparison:
    """The comparison of several studies on one metric."""
    if not all_records:
        raise CompareError("nothing to compare: no study given")
    if top_k < 1:
        raise CompareError(f"top-k must be >= 1, got {top_k}")
    names = [r.name for r in all_records]
    if len(set(names)) != len(names):
        raise CompareError(f"a study is given twice: {', '.join(names)}")
    metrics = {r.metric for r in all_records}
    if len(metrics) > 1:
        listed = ", ".join(f"{r.name}: {r.metric}" for r in all_records)
        raise CompareError(f"the studies optimise different metrics ({listed}); choose one with --metric")
    directions = {r.direction for r in all_records}
    if len(directions) > 1:
        raise CompareError(f"the studies judge {metrics.pop()} in opposite directions; they cannot be ranked together")
    direction = directions.pop()
    summaries = [s for records in all_records for s in summarise(records, top_k)]
    study_ranks = {r.name: ranks([s for s in summaries if s.study == r.name], direction) for r in all_records}
    return Comparison(
        metric=metrics.pop(),
        direction=direction,
        top_k=top_k,
        studies=names,
        architectures=_ordered_architectures(summaries, study_ranks),
        summaries=summaries,
        ranks=study_ranks,
        pareto={r.name: _pareto_fronts(r) for r in all_records},
        confirmations={r.name: found for r in all_records if (found := confirmation(r.name, r.confirmations))},
        transfers={r.name: latest for r in all_records if (latest := _latest_transfers(r.transfers))},
    )


def _latest_transfers(records: list[TransferRecord]) -> list[TransferRecord]:
    """The last finished run of each (architecture, target) (a study searched again transfers its new best), by
    target and architecture."""
    latest = {(record.architecture, record.target): record for record in records}  # records come oldest first
    return sorted(latest.values(), key=lambda record: (record.target, record.architecture))


def _ordered_architectures(
    summaries: Sequence[ArchitectureSummary], study_ranks: dict[str, dict[str, int]]
) -> list[str]:
    names = list(dict.fromkeys(s.architecture for s in summaries))
    unranked = float("inf")

    def mean_rank(name: str) -> float:
        found = [r[name] for r in study_ranks.values() if name in r]
        return float(np.mean(found)) if found else unranked

    return sorted(names, key=lambda name: (mean_rank(name), name))


def pareto_points(records: StudyRecords, cost: str) -> list[ParetoPoint]:
    """Every complete trial with a value and the cost (``n_params`` or ``fit_seconds``)."""
    cost_of = PARETO_COSTS[cost]
    return [
        ParetoPoint(records.name, t.architecture, t.number, float(t.value), float(c))
        for t in records.trials
        if t.state == "COMPLETE" and t.value is not None and (c := cost_of(t)) is not None
    ]


def _pareto_fronts(records: StudyRecords) -> dict[str, list[ParetoPoint]]:
    return {cost: pareto_front(pareto_points(records, cost), records.direction) for cost in PARETO_COSTS}
