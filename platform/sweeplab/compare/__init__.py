"""Compare architectures across sweeps: which is best, at what cost, and how sure are we.

Reads each study's trials from its Optuna storage and their runs through MLflow's tracking API, summarises every
architecture per study (best, median and IQR of the top-k trials or of repeated seeds, trial states, parameter
count, seconds per epoch, best hyperparameters), ranks them across studies, finds the Pareto fronts of the metric
against parameter count and training time, and writes tables, plots and a self-contained HTML report. More report
sections plug in as ``ReportSection``s passed to ``write_report``; representation studies get the CKA similarity
matrix of each architecture's best model (``with_cka``, ``cka_section``).
"""

from sweeplab.compare._aggregate import (
    ArchitectureSummary,
    Comparison,
    ParetoPoint,
    compare,
    pareto_front,
    ranks,
    summarise,
)
from sweeplab.compare._cka import CKA_SAMPLES, REPRESENTATION_TASKS, CkaMatrix, representation_similarity, with_cka
from sweeplab.compare._formats import FORMATS, render_csv, render_json, render_markdown, render_table
from sweeplab.compare._plots import MIN_TRIALS_FOR_IMPORTANCE, Plot, study_plots
from sweeplab.compare._records import CompareError, StudyRecords, StudySource, TrialRecord, load_records
from sweeplab.compare._report import ReportSection, build_report, cka_section, log_report, report_name, write_report

__all__ = [
    "CKA_SAMPLES",
    "FORMATS",
    "MIN_TRIALS_FOR_IMPORTANCE",
    "REPRESENTATION_TASKS",
    "ArchitectureSummary",
    "CkaMatrix",
    "CompareError",
    "Comparison",
    "ParetoPoint",
    "Plot",
    "ReportSection",
    "StudyRecords",
    "StudySource",
    "TrialRecord",
    "build_report",
    "cka_section",
    "compare",
    "load_records",
    "log_report",
    "pareto_front",
    "ranks",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_table",
    "representation_similarity",
    "report_name",
    "study_plots",
    "summarise",
    "with_cka",
    "write_report",
]
