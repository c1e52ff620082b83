"""What a person sees, in a real browser (Debian's headless Chromium driven by Playwright): the MLflow UI started by
`sweeplab ui` after a real study, and the HTML report of `sweeplab compare`. Screenshots are kept as test artifacts
(under pytest's tmp path, and in $SWEEPLAB_TEST_ARTIFACTS when it is set)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ui_server
from mlflow.tracking import MlflowClient

from sweeplab.cli import main
from sweeplab.commands._ui import experiment_url
from sweeplab.compare import report_name

CHROMIUM = Path("/usr/bin/chromium")
# Chromium on a machine with no network: no background connections, no updates, no first-run pages.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed ({CHROMIUM}; .ci/run installs it)"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One headless Chromium with a fresh profile for the module; each test opens its own page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 2200, "height": 900},
        )
        context.set_default_timeout(60_000)  # the React UI's first render on a busy 2-core machine
        yield context
        context.close()


def _keep(screenshot: Path) -> None:
    target = os.environ.get("SWEEPLAB_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(target) / screenshot.name)


@pytest.fixture
def ui(recorded_tiny_study) -> Iterator[str]:
    """`sweeplab ui` on a free loopback port against the recorded study's tracking store; yields its address."""
    with ui_server(recorded_tiny_study.tracking_uri) as address:
        yield address


def test_a_study_experiment_opens_on_its_training_runs(browser, ui, recorded_tiny_study) -> None:
    """MLflow 3 opens an experiment on its GenAI overview (traces, an assistant, "Detect Issues"); the address
    `sweeplab ui` prints for a study opens the runs table with the study instead."""
    client = MlflowClient(recorded_tiny_study.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parent_id = recorded_tiny_study.outcome.parent_run_id
    page = browser.new_page()
    page.goto(experiment_url(ui, experiment.experiment_id))  # no tab named: the experiment's default page
    page.locator(f'a[href$="/runs/{parent_id}"]').wait_for()
    assert page.get_by_text("Detect Issues").count() == 0 and "/traces" not in page.url
    page.locator(".ag-row", has=page.locator(f'a[href$="/runs/{parent_id}"]')).locator(
        "button[data-component-id*=runnamecellrenderer]"
    ).click()  # expand the study: its trials are rows of the same table
    for run in client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"):
        page.locator(f'a[href$="/runs/{run.info.run_id}"]').wait_for()
    page.close()


def test_mlflow_ui_nests_trial_runs_under_the_study_run(browser, ui, recorded_tiny_study, tmp_path) -> None:
    client = MlflowClient(recorded_tiny_study.tracking_uri)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    parent_id = recorded_tiny_study.outcome.parent_run_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert len(children) == 3
    page = browser.new_page()
    page.goto(f"{ui}/#/experiments/{experiment}/runs")
    parent = page.locator(f'a[href$="/runs/{parent_id}"]')
    parent.wait_for()
    child_link = {run.info.run_id: page.locator(f'a[href$="/runs/{run.info.run_id}"]') for run in children}
    assert all(link.count() == 0 for link in child_link.values())  # collapsed under their parent

    # Show the objective as a column, then expand the parent: its trials appear below it, indented.
    page.get_by_role("button", name="Columns").click()
    page.get_by_placeholder("Search columns").fill("val_rel_l2")
    page.locator(".du-bois-light-tree-title").filter(has_text=re.compile(r"^val_rel_l2$")).click()
    page.keyboard.press("Escape")
    page.locator(".ag-row", has=parent).locator("button[data-component-id*=runnamecellrenderer]").click()  # expand
    parent_box = parent.bounding_box()
    for run in children:
        link = child_link[run.info.run_id]
        link.wait_for()
        assert link.inner_text() == run.data.tags["mlflow.runName"]
        box = link.bounding_box()
        assert box["y"] > parent_box["y"] and box["x"] > parent_box["x"]  # below the parent and indented
        # The row's metric cell (the grid splits a row into a pinned and a scrolling part with the same row-id).
        cells = page.locator(f'.ag-center-cols-container .ag-row[row-id="{run.info.run_id}"]').inner_text()
        shown = [float(x) for x in re.findall(r"\d+\.\d+(?:e-?\d+)?", cells)]
        assert any(v == pytest.approx(run.data.metrics["val_rel_l2"], rel=1e-6) for v in shown), cells
    screenshot = tmp_path / "artifacts" / "mlflow-ui-nested-runs.png"
    page.screenshot(path=screenshot, full_page=True)
    _keep(screenshot)
    page.close()


def test_compare_report_renders_its_table_and_plots_without_errors(browser, recorded_tiny_study, tmp_path) -> None:
    out = tmp_path / "report"
    stores = ["--storage", recorded_tiny_study.storage, "--tracking-uri", recorded_tiny_study.tracking_uri]
    arguments = ["compare", str(recorded_tiny_study.study_file), *stores, "--out", str(out), "--no-log"]
    assert main([*arguments, "--format", "json"]) == 0
    report = out / report_name(["tiny"])
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: None if request.url == report.as_uri() else problems.append(request.url))
    page.goto(report.as_uri())

    html = report.read_text()
    interactive = html.count('class="plot interactive"')
    images = html.count("<img alt=")
    assert interactive >= 2 and images >= 1  # history, parallel coordinates, Pareto; learning curves
    page.locator(".js-plotly-plot .main-svg").nth(interactive - 1).wait_for()
    rendered = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => p._fullData.length)")
    assert len(rendered) == interactive and all(traces > 0 for traces in rendered)
    widths = page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().then(() => i.naturalWidth)))")
    assert len(widths) == images and all(w > 100 for w in widths)
    rows = page.locator('table[aria-label="tiny: val_rel_l2 (minimize)"] tbody tr')
    assert rows.count() == 1 and rows.first.locator("td").nth(1).inner_text() == "fno2d"
    best = json.loads((out / "summary.json").read_text())["summaries"][0]["best_value"]
    assert float(rows.first.locator("td").nth(2).inner_text()) == pytest.approx(best, rel=1e-3)
    screenshot = tmp_path / "artifacts" / "compare-report.png"
    page.screenshot(path=screenshot, full_page=True)
    _keep(screenshot)
    page.close()
    assert problems == []
