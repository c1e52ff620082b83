"""``sweeplab compare``: read the studies, print the comparison, write and log the report."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sweeplab.compare._aggregate import compare
from sweeplab.compare._formats import TERMINAL_WIDTH, render_csv, render_json, render_markdown, render_table
from sweeplab.compare._records import CompareError, StudySource, load_records, resolve_source

EXIT_FAILED = 1
EXIT_INVALID = 2


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
            from sweeplab.compare._cka import with_cka

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
        return 0

    from sweeplab.compare._plots import study_plots
    from sweeplab.compare._report import cka_section, log_report, write_report

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
    return 0
