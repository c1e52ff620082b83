"""The HTML report: tables and plots in one self-contained file (PNGs embedded, plotly.js inlined once: nothing is
fetched when it is opened), written to a folder and logged on each study's parent MLflow run."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sweeplab.compare._aggregate import Comparison
from sweeplab.compare._cka import CKA_SAMPLES
from sweeplab.compare._formats import (
    CONFIRM_HEADER,
    CONFIRM_NOTE,
    COST_LABELS,
    SUMMARY_HEADER,
    SUMMARY_NOTE,
    TRANSFER_NOTE,
    best_params_lines,
    confirmation_rows,
    confirmation_title,
    confirmation_verdict,
    front_text,
    matrix_rows,
    number,
    render_csv,
    render_json,
    render_markdown,
    study_title,
    summary_rows,
    transfer_header,
    transfer_rows,
)
from sweeplab.compare._plots import Plot, cka_heatmap, slug
from sweeplab.compare._records import StudyRecords

ARTIFACT_FOLDER = "compare"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .7em; text-align: right; }
th { background: #f4f4f4; } td:nth-child(2), th:nth-child(2) { text-align: left; }
img { max-width: 100%; } .note { color: #666; font-style: italic; } .plot { margin: 1em 0 2em; }
code { background: #f4f4f4; padding: 0 .2em; } .warning { color: #a40; }
"""


@dataclass(frozen=True)
class ReportSection:
    """A section of the report. Extra sections (a CKA similarity matrix of the best models, say) are passed to
    ``build_report``/``write_report`` and appear after the built-in ones, with an entry in the contents."""

    title: str
    body_html: str
    """Trusted HTML: escape anything that comes from a user."""
    plots: tuple[Plot, ...] = ()
    """Plots shown in ``body_html`` whose PNGs ``write_report`` also writes to ``png/``."""

    @property
    def anchor(self) -> str:
        return slug(self.title.lower())


def report_name(studies: Sequence[str]) -> str:
    """``report-<study>[+<study>...].html``: each comparison a study takes part in keeps its own report."""
    return "report-" + "+".join(slug(s) for s in studies)[:150] + ".html"


def build_report(comparison: Comparison, plots: Sequence[Plot], extra_sections: Sequence[ReportSection] = ()) -> str:
    sections = [_summary_section(comparison)]
    if comparison.confirmations:
        sections.append(_confirmation_section(comparison))
    if comparison.transfers:
        sections.append(_transfer_section(comparison))
    if len(comparison.studies) > 1:
        sections.append(_matrix_section(comparison))
    sections.extend(_plot_section(study, [p for p in plots if p.study == study]) for study in comparison.studies)
    sections.extend(extra_sections)
    interactive = any(p.figure is not None for p in plots)
    contents = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{s.body_html}</section>' for s in sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"sweeplab compare: {', '.join(comparison.studies)}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{_plotly_script() if interactive else ''}</head>"
        f"<body><h1>{html.escape(title)}</h1>"
        f"<p>Metric <code>{html.escape(comparison.metric)}</code> ({comparison.direction}); spread: median ± IQR of "
        f"the top-{comparison.top_k} trials, or of the seeds where a configuration was repeated. Generated {generated}."
        f"</p><nav><ol>{contents}</ol></nav>{body}</body></html>"
    )


def write_report(
    comparison: Comparison,
    plots: Sequence[Plot],
    out: Path,
    extra_sections: Sequence[ReportSection] = (),
) -> Path:
    """Write the report, every PNG (``png/``) and the tables (Markdown, CSV, JSON) into ``out``."""
    (out / "png").mkdir(parents=True, exist_ok=True)
    for plot in [*plots, *(plot for section in extra_sections for plot in section.plots)]:
        if plot.png is not None:
            (out / "png" / f"{plot.key}.png").write_bytes(plot.png)
    (out / "summary.md").write_text(render_markdown(comparison))
    (out / "summary.csv").write_text(render_csv(comparison))
    (out / "summary.json").write_text(render_json(comparison))
    report = out / report_name(comparison.studies)
    report.write_text(build_report(comparison, plots, extra_sections), encoding="utf-8")
    return report


def log_report(all_records: Sequence[StudyRecords], report: Path) -> list[str]:
    """Log the report on each study's parent run (``compare/<name>``); returns the runs it went to."""
    for records in all_records:
        records.client.log_artifact(records.parent_run_id, str(report), ARTIFACT_FOLDER)
    return [records.parent_run_id for records in all_records]


# -- sections --------------------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]], label: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table aria-label="{html.escape(label)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _summary_section(comparison: Comparison) -> ReportSection:
    parts = []
    for study in comparison.studies:
        title = study_title(comparison, study)
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(_table(SUMMARY_HEADER, summary_rows(comparison, study), title))
        parts.append(f'<p class="note">{html.escape(SUMMARY_NOTE)}</p>')
        items = "".join(f"<li>{html.escape(line)}</li>" for line in best_params_lines(comparison, study))
        parts.append(f"<p>Best hyperparameters:</p><ul>{items}</ul>")
        fronts = "".join(
            f"<li>vs {COST_LABELS[cost]}: {html.escape(front_text(front, cost))}</li>"
            for cost, front in comparison.pareto[study].items()
        )
        parts.append(f"<p>Pareto fronts (trial: value @ cost):</p><ul>{fronts}</ul>")
    return ReportSection("Summary", "".join(parts))


def _confirmation_section(comparison: Comparison) -> ReportSection:
    parts = []
    for confirmation in comparison.confirmations.values():
        title = confirmation_title(confirmation)
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(_table(CONFIRM_HEADER, confirmation_rows(confirmation), title))
        verdict = "verdict" if confirmation.significant else "verdict warning"
        parts.append(f'<p class="{verdict}"><strong>{html.escape(confirmation_verdict(confirmation))}</strong></p>')
        parts.append(f'<p class="note">{html.escape(CONFIRM_NOTE)}</p>')
    return ReportSection("Confirmation over seeds", "".join(parts))


def _transfer_section(comparison: Comparison) -> ReportSection:
    parts = []
    for study in comparison.transfers:
        title = f"{study}: transfer targets"
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(_table(transfer_header(comparison), transfer_rows(comparison, study), title))
    parts.append(f'<p class="note">{html.escape(TRANSFER_NOTE)}</p>')
    return ReportSection("Transfer targets", "".join(parts))


def _matrix_section(comparison: Comparison) -> ReportSection:
    header = ["architecture", *comparison.studies]
    table = _table(header, matrix_rows(comparison), "best per study")
    return ReportSection(f"Best {comparison.metric} (rank) per study", table)


def cka_section(comparison: Comparison) -> ReportSection | None:
    """The CKA matrices of the representation studies (None if there are none): a table and a heatmap each."""
    if not comparison.cka:
        return None
    parts, plots = [], []
    for study, matrix in comparison.cka.items():
        parts.append(f"<h3>{html.escape(study)}</h3>")
        if len(matrix.architectures) >= 2:
            header = ["CKA", "architecture (trial)", *matrix.architectures]
            rows = [
                [kind, f"{name} (#{trial})", *(number(v) for v in row)]
                for kind, values in (("linear", matrix.linear), ("debiased", matrix.debiased))
                for name, trial, row in zip(matrix.architectures, matrix.trials, values, strict=False)
            ]
            parts.append(_table(header, rows, f"CKA {study}"))
            plot = cka_heatmap(matrix)
            plots.append(plot)
            parts.append(_plot_html(plot))
        if matrix.note:
            parts.append(f'<p class="note">{html.escape(matrix.note)}</p>')
    intro = (
        "<p>Linear CKA (Kornblith et al. 2019) and its debiased variant between the encoder outputs (pre-projection "
        f"features) of each architecture's best trial on the same test samples (up to {CKA_SAMPLES}): 1 for "
        "representations equal up to rotation and scale.</p>"
    )
    return ReportSection("Representation similarity (CKA)", intro + "".join(parts), tuple(plots))


def _plot_section(study: str, plots: Sequence[Plot]) -> ReportSection:
    return ReportSection(f"Plots: {study}", "".join(_plot_html(plot) for plot in plots))


def _plot_html(plot: Plot) -> str:
    title = f"<h3>{html.escape(plot.title)}</h3>" if plot.note else ""  # figures carry their own title
    if plot.figure is not None:
        figure = plot.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{plot.key}",
            config={"displaylogo": False, "responsive": True},
        )
        return f'<div class="plot interactive">{title}{figure}</div>'
    if plot.png is not None:
        source = "data:image/png;base64," + base64.b64encode(plot.png).decode()
        return f'<div class="plot">{title}<img alt="{html.escape(plot.title)}" src="{source}"></div>'
    return f'<div class="plot">{title}<p class="note">{html.escape(plot.note or "")}</p></div>'


def _plotly_script() -> str:
    from plotly.offline import get_plotlyjs

    return f'<script type="text/javascript">{get_plotlyjs()}</script>'
