"""The comparison as text: a terminal table readable at 100 columns, Markdown for a paper draft, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sweeplab.compare._aggregate import ArchitectureSummary, Comparison, ParetoPoint
from sweeplab.compare._confirm import ALPHA, Confirmation

FORMATS = ("table", "markdown", "csv", "json", "html")
TERMINAL_WIDTH = 100

COST_LABELS = {"n_params": "parameters", "fit_seconds": "training seconds"}


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def short(value: float | None) -> str:
    """For spreads and timings, where three digits say all there is."""
    return "-" if value is None else f"{value:.3g}"


def count(value: float | None) -> str:
    """A parameter count as a paper writes it: 850, 12.3k, 1.19M."""
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={number(v) if isinstance(v, float) else v}" for k, v in params.items())


def spread_over_text(summary: ArchitectureSummary) -> str:
    """What the median and IQR are taken over: ``top-5`` (the five best trials) or ``3 seeds``."""
    if summary.median is None:
        return "-"
    return f"{summary.spread_n} seeds" if summary.spread_over == "seeds" else f"top-{summary.spread_n}"


def states_text(summary: ArchitectureSummary) -> str:
    return f"{summary.complete}/{summary.pruned}/{summary.failed}"


def summary_rows(comparison: Comparison, study: str) -> list[list[str]]:
    """One study's table, one row per architecture in the comparison's order (best first)."""
    rows = []
    for architecture in comparison.architectures:
        found = comparison.summary(study, architecture)
        if found is None:
            continue
        rank = comparison.ranks[study].get(architecture)
        rows.append(
            [
                str(rank) if rank is not None else "-",
                architecture,
                number(found.best_value),
                str(found.best_trial) if found.best_trial is not None else "-",
                number(found.median),
                short(found.iqr),
                spread_over_text(found),
                states_text(found),
                count(found.n_params),
                short(found.seconds_per_epoch),
            ]
        )
    return sorted(rows, key=lambda row: (row[0] == "-", int(row[0]) if row[0] != "-" else 0))


SUMMARY_HEADER = ["rank", "architecture", "best", "trial", "median", "IQR", "over", "C/P/F", "params", "s/epoch"]
SUMMARY_NOTE = (
    "median and IQR (interquartile range) of the top-k trials, or of the seeds of the best repeated configuration; "
    "C/P/F: complete/pruned/failed trials; params of the best trial; s/epoch: median training seconds per epoch"
)


def study_title(comparison: Comparison, study: str) -> str:
    return f"{study}: {comparison.metric} ({comparison.direction})"


def matrix_rows(comparison: Comparison) -> list[list[str]]:
    """architectures x studies: ``best (rank)``."""
    rows = []
    for architecture, row in comparison.best_matrix().items():
        cells = []
        for study, value in row.items():
            rank = comparison.ranks[study].get(architecture)
            cells.append("-" if value is None else f"{number(value)} ({rank})")
        rows.append([architecture, *cells])
    return rows


def front_text(front: Sequence[ParetoPoint], cost: str) -> str:
    shown = count if cost == "n_params" else number
    return " -> ".join(f"{p.architecture} #{p.trial} ({number(p.value)} @ {shown(p.cost)})" for p in front) or "-"


def best_params_lines(comparison: Comparison, study: str) -> list[str]:
    lines = []
    for architecture in comparison.architectures:
        found = comparison.summary(study, architecture)
        if found is not None and found.best_trial is not None:
            lines.append(f"{architecture} (trial {found.best_trial}): {params_text(found.best_params)}")
    return lines


def transfer_header(comparison: Comparison) -> list[str]:
    """The transfer table's columns: the compared metric and, for a validation metric, its test counterpart."""
    test = "test_" + comparison.metric.removeprefix("val_")
    return ["architecture", "proxy trial", "target", comparison.metric, *([test] if test != comparison.metric else [])]


def transfer_rows(comparison: Comparison, study: str) -> list[list[str]]:
    metrics = transfer_header(comparison)[3:]
    return [
        [record.architecture, str(record.trial), str(record.target), *(number(record.metrics.get(m)) for m in metrics)]
        for record in comparison.transfers[study]
    ]


TRANSFER_NOTE = (
    "strategy transfer: each architecture's best trial at the proxy width trained at every target width with its "
    "hyperparameters"
)


CONFIRM_HEADER = ["architecture", "trial", "seeds", "mean", "95% CI", "minus winner", "p", "p (Holm)", "significant"]
CONFIRM_NOTE = (
    "each architecture's best trial trained again with the same fresh seeds and tested; 95% t-interval of the mean; "
    "two-sided paired t-test against the winner on the shared seeds (few seeds: Wilcoxon's exact test cannot reach "
    "5% below six), Holm-adjusted over the comparisons"
)


def confirmation_title(confirmation: Confirmation) -> str:
    seeds = ", ".join(str(s) for s in confirmation.seeds)
    return f"{confirmation.study}: confirmation, {confirmation.metric} ({confirmation.direction}) over seeds {seeds}"


def confirmation_rows(confirmation: Confirmation) -> list[list[str]]:
    tests = {test.architecture: test for test in confirmation.tests}
    rows = []
    for confirmed in confirmation.architectures:
        interval = "-" if confirmed.ci_low is None else f"[{number(confirmed.ci_low)}, {number(confirmed.ci_high)}]"
        test = tests.get(confirmed.architecture)
        if test is None:
            comparison = ["winner", "", "", ""]
        else:
            verdict = "-" if test.p_holm is None else ("yes" if test.significant else "no")
            comparison = [short(test.mean_difference), short(test.p_value), short(test.p_holm), verdict]
        rows.append(
            [confirmed.architecture, str(confirmed.trial), str(len(confirmed.values)), number(confirmed.mean), interval]
            + comparison
        )
    return rows


def confirmation_verdict(confirmation: Confirmation) -> str:
    if not confirmation.tests:
        return f"{confirmation.winner} is the only confirmed architecture"
    if confirmation.significant:
        return f"{confirmation.winner} is best, significantly at {ALPHA:.0%} against every other architecture"
    unsure = ", ".join(t.architecture for t in confirmation.tests if not t.significant)
    return (
        f"ranking NOT significant: {confirmation.winner} has the best mean, but not significantly at {ALPHA:.0%} "
        f"against {unsure}"
    )


def confirmation_dict(confirmation: Confirmation) -> dict[str, Any]:
    return {
        **asdict(confirmation),
        "winner": confirmation.winner,
        "significant": confirmation.significant,
        "test": "two-sided paired t-test, Holm-adjusted",
    }


# -- renderers -------------------------------------------------------------------------------------------------
def render_table(comparison: Comparison, width: int = TERMINAL_WIDTH) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=width, record=True, file=io.StringIO(), force_terminal=False, color_system=None)
    for study in comparison.studies:
        table = Table(title=study_title(comparison, study), title_justify="left", box=box.SIMPLE_HEAD)
        for index, name in enumerate(SUMMARY_HEADER):
            table.add_column(name, justify="left" if index == 1 else "right", overflow="fold")
        for row in summary_rows(comparison, study):
            table.add_row(*row)
        console.print(table)
        console.print("best hyperparameters:")
        for line in best_params_lines(comparison, study):
            console.print(f"  {line}", overflow="fold")
        for cost, front in comparison.pareto[study].items():
            console.print(f"Pareto front vs {COST_LABELS[cost]}: {front_text(front, cost)}", overflow="fold")
        console.print()
        if study in comparison.confirmations:
            confirmation = comparison.confirmations[study]
            table = Table(title=confirmation_title(confirmation), title_justify="left", box=box.SIMPLE_HEAD)
            for index, name in enumerate(CONFIRM_HEADER):
                table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
            for row in confirmation_rows(confirmation):
                table.add_row(*row)
            console.print(table)
            console.print(confirmation_verdict(confirmation), overflow="fold")
            console.print(CONFIRM_NOTE, style="dim", overflow="fold")
            console.print()
        if study in comparison.transfers:
            table = Table(title=f"{study}: transfer targets", title_justify="left", box=box.SIMPLE_HEAD)
            for index, name in enumerate(transfer_header(comparison)):
                table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
            for row in transfer_rows(comparison, study):
                table.add_row(*row)
            console.print(table)
            console.print(TRANSFER_NOTE, style="dim", overflow="fold")
            console.print()
    if len(comparison.studies) > 1:
        matrix = Table(title=f"best {comparison.metric} (rank) per study", title_justify="left", box=box.SIMPLE_HEAD)
        matrix.add_column("architecture", overflow="fold")
        for study in comparison.studies:
            matrix.add_column(study, justify="right", overflow="fold")
        for row in matrix_rows(comparison):
            matrix.add_row(*row)
        console.print(matrix)
    console.print(SUMMARY_NOTE, style="dim")
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "| " + " | ".join("---" for _ in header) + " |", *map(line, rows)])


def render_markdown(comparison: Comparison) -> str:
    parts = []
    for study in comparison.studies:
        parts.append(f"### {study_title(comparison, study)}\n")
        parts.append(_markdown_table(SUMMARY_HEADER, summary_rows(comparison, study)) + "\n")
        parts.append(f"{SUMMARY_NOTE[0].upper()}{SUMMARY_NOTE[1:]}.\n")
        parts.append("Best hyperparameters:\n")
        parts.extend(f"- {line}" for line in best_params_lines(comparison, study))
        parts.append("")
        for cost, front in comparison.pareto[study].items():
            parts.append(f"Pareto front vs {COST_LABELS[cost]}: {front_text(front, cost)}\n")
        if study in comparison.confirmations:
            confirmation = comparison.confirmations[study]
            parts.append(f"#### {confirmation_title(confirmation)}\n")
            parts.append(_markdown_table(CONFIRM_HEADER, confirmation_rows(confirmation)) + "\n")
            parts.append(f"**{confirmation_verdict(confirmation)}**. {CONFIRM_NOTE[0].upper()}{CONFIRM_NOTE[1:]}.\n")
        if study in comparison.transfers:
            parts.append(f"#### {study}: transfer targets\n")
            parts.append(_markdown_table(transfer_header(comparison), transfer_rows(comparison, study)) + "\n")
            parts.append(f"{TRANSFER_NOTE[0].upper()}{TRANSFER_NOTE[1:]}.\n")
    if len(comparison.studies) > 1:
        parts.append(f"### Best {comparison.metric} (rank) per study\n")
        parts.append(_markdown_table(["architecture", *comparison.studies], matrix_rows(comparison)) + "\n")
    return "\n".join(parts)


CSV_FIELDS = [
    "study",
    "architecture",
    "rank",
    "metric",
    "direction",
    "best_value",
    "best_trial",
    "best_run_id",
    "median",
    "iqr",
    "spread_n",
    "spread_over",
    "complete",
    "pruned",
    "failed",
    "n_params",
    "seconds_per_epoch",
    "best_params",
]


def _summary_record(comparison: Comparison, summary: ArchitectureSummary) -> dict[str, Any]:
    record = asdict(summary)
    record.update(
        rank=comparison.ranks[summary.study].get(summary.architecture),
        metric=comparison.metric,
        direction=comparison.direction,
    )
    return record


def render_csv(comparison: Comparison) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for summary in comparison.summaries:
        record = _summary_record(comparison, summary)
        record["best_params"] = json.dumps(record["best_params"], sort_keys=True)
        writer.writerow({k: "" if record[k] is None else record[k] for k in CSV_FIELDS})
    return out.getvalue()


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    return {
        "metric": comparison.metric,
        "direction": comparison.direction,
        "top_k": comparison.top_k,
        "studies": comparison.studies,
        "architectures": comparison.architectures,
        "summaries": [_summary_record(comparison, s) for s in comparison.summaries],
        "best_matrix": comparison.best_matrix(),
        "ranks": comparison.ranks,
        "pareto": {
            study: {cost: [asdict(p) for p in front] for cost, front in fronts.items()}
            for study, fronts in comparison.pareto.items()
        },
        "confirmations": {study: confirmation_dict(c) for study, c in comparison.confirmations.items()},
        "transfers": {study: [asdict(r) for r in records] for study, records in comparison.transfers.items()},
        "cka": {study: asdict(matrix) for study, matrix in comparison.cka.items()},
    }


def render_json(comparison: Comparison) -> str:
    return json.dumps(comparison_dict(comparison), indent=2, allow_nan=False, default=str) + "\n"
