"""The confirmation stage's statistics: each architecture's best configuration over the same fresh seeds, its mean
with a 95% t-interval, and a paired test of the winner against every other architecture.

The test is the two-sided paired t-test on the per-seed differences (``scipy.stats.ttest_rel``). Paired, because
each seed fixes the same batch order for every architecture, so the differences cancel what the seed does to all of
them alike. A t-test rather than Wilcoxon's signed-rank test, because confirmations use few seeds: with k pairs the
exact signed-rank test's smallest two-sided p-value is 2 / 2**k, 0.0625 at k = 5, so below six seeds it can never
find a difference significant at 5%, however large. The t-test assumes roughly normal differences, which seed noise
on a test mean over many samples usually is. Two-sided, because the winner is the confirmation's own best mean, a
direction picked from the same data. The p-values are Holm-adjusted over the comparisons with the winner (one
family per study), and the ranking is flagged as not significant when any adjusted p-value is 0.05 or more.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sweeplab.compare._records import ConfirmRecord

ALPHA = 0.05
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ConfirmedArchitecture:
    """One architecture's best configuration over the confirmation seeds."""

    architecture: str
    trial: int
    values: dict[int, float]
    """seed -> test value."""
    mean: float
    ci_low: float | None
    ci_high: float | None
    """The 95% t-interval of the mean (None with one seed)."""


@dataclass(frozen=True)
class PairedTest:
    """The winner against one other architecture, on the seeds both have."""

    architecture: str
    n_pairs: int
    mean_difference: float
    """Mean of (this architecture's value - the winner's) over the pairs."""
    p_value: float | None
    """Two-sided paired t-test; None with fewer than two pairs."""
    p_holm: float | None
    """Holm-adjusted over the study's comparisons with the winner."""

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA


@dataclass(frozen=True)
class Confirmation:
    """One study's confirmation: architectures best mean first, the first one the winner."""

    study: str
    metric: str
    direction: str
    seeds: list[int]
    architectures: list[ConfirmedArchitecture]
    tests: list[PairedTest]

    @property
    def winner(self) -> str:
        return self.architectures[0].architecture

    @property
    def significant(self) -> bool:
        """Whether the winner beats every other architecture at level ``ALPHA`` (Holm-adjusted)."""
        return all(test.significant for test in self.tests)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """Mean and the two-sided t-interval ``mean -/+ t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)``."""
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * float(np.std(values, ddof=1))
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_p_value(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Two-sided paired t-test; 1 when every difference is zero (nothing tells them apart), None below 2 pairs."""
    from scipy import stats

    differences = np.subtract(first, second)
    if len(differences) < 2:
        return None
    if not differences.any():
        return 1.0
    return float(stats.ttest_rel(first, second).pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: the i-th smallest of m p-values times (m - i), kept monotone, at most 1."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def confirmation(study: str, records: Sequence[ConfirmRecord]) -> Confirmation | None:
    """The statistics of one study's confirmation runs; None when it has none. Per architecture, the runs of its
    most recently confirmed trial count (a study searched further and confirmed again may have older ones)."""
    scored = [r for r in records if r.value is not None]
    if not scored:
        return None
    latest: dict[str, ConfirmRecord] = {}
    for record in scored:
        if record.architecture not in latest or record.started > latest[record.architecture].started:
            latest[record.architecture] = record
    values: dict[str, dict[int, float]] = defaultdict(dict)
    for record in scored:
        if record.trial == latest[record.architecture].trial:
            values[record.architecture][record.seed] = float(record.value)  # type: ignore[arg-type]
    direction = scored[0].direction
    sign = 1.0 if direction == "minimize" else -1.0
    confirmed = []
    for architecture, by_seed in values.items():
        mean, low, high = t_interval(list(by_seed.values()))
        confirmed.append(
            ConfirmedArchitecture(architecture, latest[architecture].trial, dict(by_seed), mean, low, high)
        )
    confirmed.sort(key=lambda c: (sign * c.mean, c.architecture))
    winner = confirmed[0]
    raw = []
    for other in confirmed[1:]:
        seeds = sorted(set(winner.values) & set(other.values))
        ours, theirs = [other.values[s] for s in seeds], [winner.values[s] for s in seeds]
        difference = float(np.mean(np.subtract(ours, theirs))) if seeds else math.nan
        raw.append((other.architecture, len(seeds), difference, paired_p_value(ours, theirs)))
    adjusted = holm([p for *_, p in raw])
    tests = [PairedTest(name, n, diff, p, p_adj) for (name, n, diff, p), p_adj in zip(raw, adjusted, strict=True)]
    seeds = sorted({seed for c in confirmed for seed in c.values})
    return Confirmation(study, scored[0].metric, direction, seeds, confirmed, tests)
