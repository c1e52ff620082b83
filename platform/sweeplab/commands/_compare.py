"""``sweeplab compare``: read the studies, print the comparison, write and log the report."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sweeplab.commands._exit import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from sweeplab.compare import (
    CompareError,
    StudySource,
    cka_section,
    compare,
    load_records,
    log_report,
    study_plots,
    with_cka,
    write_report,
)
from sweeplab.compare._formats import TERMINAL_WIDTH, render_csv, render_json, render_markdown, render_table
from sweeplab.compare._records import resolve_source


def compare_command(
    studies: Sequence[str],
    metric: str | None = None,
    output_format: str = "table",
    out: Path | None = None,
    top_k: int = 5,
    storage: str | None = None,
    tracking_uri: str | None = None,
    log_artifact: bool = True,
) -> int:
    from sweeplab.spec import StudyError

    # The report reads checkpoints and learning curves: MLflow would draw a progress bar for every download.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if output_format == "html" and out is None:
        print("--format html writes a report: give the folder with --out DIR", file=sys.stderr)
        return EXIT_INVALID
    sources: list[StudySource] = []
    for argument in studies:
        try:
            sources.append(resolve_source(argument, storage, tracking_uri))
        except StudyError as error:
            print(error, file=sys.stderr)
            return EXIT_INVALID
    try:
        all_records = [load_records(source, metric) for source in sources]
        comparison = compare(all_records, top_k)
        if output_format == "json" or out is not None:  # the CKA of representation studies loads their models
            comparison = with_cka(comparison, all_records)
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    renderers = {"markdown": render_markdown, "csv": render_csv, "json": render_json}
    if output_format == "table":
        width = shutil.get_terminal_size((TERMINAL_WIDTH, 24)).columns if sys.stdout.isatty() else TERMINAL_WIDTH
        sys.stdout.write(render_table(comparison, width))
    elif output_format in renderers:
        sys.stdout.write(renderers[output_format](comparison))
    if out is None:
        return EXIT_OK
    plots = [plot for records in all_records for plot in study_plots(records, comparison)]
    similarity = cka_section(comparison)
    report = write_report(comparison, plots, out, [similarity] if similarity else [])
    if output_format == "html":
        print(report)
    where = ""
    if log_artifact:
        runs = log_report(all_records, report)
        where = f"; logged on parent run(s) {', '.join(runs)}"
    print(f"report: {report}{where}", file=sys.stderr)
    return EXIT_OK
