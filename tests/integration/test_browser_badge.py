"""The web badge in a real browser (Debian's chromium + chromium-driver, driven by selenium) against the real
server serving the real front end (``comfyui-frontend-package``): load the shipped demo workflow with a
CG-Taylor Gate branch added, queue it from the page, wait for the run, read both badges from the page.

Skipped, with the reason, where no Chromium or chromedriver is installed (``scripts/test.sh`` installs them
when it runs as root on a system with apt-get). Screenshots go to ``artifacts/browser_*.png``; set
``TAYLOR_UPDATE_DOCS=1`` to also refresh the pictures in ``docs/``: ``graph.png`` (the whole graph after the run,
the README's first picture) and ``badge.png`` (the two patch nodes side by side).
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import tempfile
import time
import urllib.request

import pytest
import server_harness
from comfy_harness import REPO

from taylor_core.stats import format_bytes

ARTIFACTS = REPO / "artifacts"
STEPS = 30
EXTENSION = "taylor_forecast.badge"
TS_NODE, GATE_NODE = "2", "9"


def _browser_paths() -> tuple[str, str]:
    browser = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not (browser and driver and os.path.exists(browser) and os.path.exists(driver)):
        pytest.skip("no Chromium/chromedriver installed (Debian: apt-get install chromium chromium-driver; "
                    "scripts/test.sh does it when run as root)")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser_paths()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="taylor-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1500,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _graph() -> dict:
    """The demo workflow plus a CG-Taylor Gate branch on the same model (its own sampler, decode and save)."""
    graph = json.loads(server_harness.DEMO_WORKFLOW.read_text())
    graph["5"]["inputs"]["batch_size"] = 2
    graph["6"]["inputs"].update(seed=201, steps=STEPS)
    graph[GATE_NODE] = {"class_type": "CGTaylorGate", "_meta": {"title": "CG-Taylor Gate"}, "inputs": {
        "model": ["1", 0], "threshold": -1.0, "max_order": 1, "first_block_order": 2, "warmup_steps": 3,
        "tail_steps": 1, "start_percent": 0.0, "end_percent": 1.0, "max_consecutive": 4, "clock": "step",
        "cache_device": "auto"}}
    graph["10"] = copy.deepcopy(graph["6"])
    graph["10"]["inputs"].update(model=[GATE_NODE, 0], seed=202)
    graph["11"] = {"class_type": "TaylorDemoDigitDecode", "inputs": {"samples": ["10", 0]}}
    graph["12"] = {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "taylor_gate"}}
    return graph


def _wait(driver, script: str, timeout_s: float, what: str, *args):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def open_front_end(driver, url: str, timeout_s: float = 180.0) -> None:
    """Open the page and wait until the front end is ready with every node type the server defines registered
    (newer front ends, 1.49, register them after ``vueAppReady``) and this pack's extension loaded."""
    with urllib.request.urlopen(url + "/object_info", timeout=60) as response:
        types = len(json.load(response))
    driver.get(url + "/")
    _wait(driver, "const app = window.comfyAPI?.app?.app; return !!(app?.vueAppReady && app.graph) "
                  "&& Object.keys(LiteGraph.registered_node_types).length >= arguments[1] "
                  "&& app.extensions.some(e => e.name === arguments[0])", timeout_s,
          "the front end, its node definitions and the pack's extension", EXTENSION, types)


def _load(driver, graph: dict, ids: list[str], attempts: int = 10) -> None:
    """Load the API graph into the page (again if the front end's own start-up restored another graph over it,
    or, newer front ends, had not mounted its canvas component yet: "getCanvas: canvas is null")."""
    from selenium.common.exceptions import JavascriptException

    for _ in range(attempts):
        try:
            driver.execute_script("return window.comfyAPI.app.app.loadApiJson(arguments[0], "
                                  "'taylor_badge_test.json')", graph)
        except JavascriptException as exc:
            if "canvas is null" not in str(exc):
                raise
        time.sleep(1.0)
        if driver.execute_script("return arguments[0].every(id => window.comfyAPI.app.app.graph.getNodeById(id)"
                                 "?.taylorForecastBadge)", ids):
            return
    raise AssertionError(f"the page did not keep the loaded graph (nodes {ids} with their badges)")


_STATE = """
const app = window.comfyAPI.app.app;
const out = {};
for (const id of arguments[0]) {
  const node = app.graph.getNodeById(id);
  const badge = node.taylorForecastBadge;
  const box = badge.getBoundingClientRect();
  out[id] = {size: [...node.size], state: badge.dataset.state, text: badge.innerText, badgeHeight: box.height,
             report: node.taylorForecastReport ?? null, cells: badge.querySelectorAll('.tf-cell').length,
             fullCells: badge.querySelectorAll('.tf-cell.full').length,
             thresholdLines: badge.querySelectorAll('.tf-threshold').length,
             errorDots: badge.querySelectorAll('.tf-error').length};
}
return out;
"""


@pytest.fixture(scope="module")
def run(request, browser):
    """Open the page, load the graph, queue it from the page; the badges' state before and after the run."""
    server = server_harness.comfy_server(request)
    # A fresh ComfyUI user folder makes the front end open its template browser on an empty graph at first
    # start; a user who has seen it once has this setting (the same request the front end sends).
    urllib.request.urlopen(urllib.request.Request(server.url + "/settings/Comfy.TutorialCompleted", data=b"true",
                                                  method="POST"), timeout=30).close()
    open_front_end(browser, server.url)
    ids = [TS_NODE, GATE_NODE]
    _load(browser, _graph(), ids)
    before = browser.execute_script(_STATE, ids)
    browser.execute_script("window.comfyAPI.app.app.queuePrompt(0, 1)")
    _wait(browser, "return arguments[0].every(id => window.comfyAPI.app.app.graph.getNodeById(id)"
                   ".taylorForecastBadge.dataset.state === 'ready')", 600, "both run reports", ids)
    after = browser.execute_script(_STATE, ids)
    _screenshots(browser)
    return before, after, browser.get_log("browser")


def test_taylorseer_badge_shows_the_schedule(run):
    _before, after, _log = run
    badge = after[TS_NODE]
    full = round(STEPS / 3.0)  # the shipped workflow's target_speedup 3: round(steps / 3) steps computed
    assert badge["report"]["node"] == TS_NODE and badge["report"]["kind"] == "taylorseer"
    report = badge["report"]
    assert f"full {full}/{STEPS} steps ({STEPS / full:.2f}x)" in badge["text"]  # steps: what the budget counts
    assert (report["full"], report["evaluations"]) == (full, STEPS)  # euler: one evaluation per step
    assert f"evaluations: full {full}/{STEPS}, {STEPS / full:.2f}x less compute" in badge["text"]
    assert f"cache peak {format_bytes(badge['report']['cache_peak_bytes'])}," in badge["text"]
    assert (badge["cells"], badge["fullCells"]) == (STEPS, full)
    assert badge["thresholdLines"] == 0


def test_gate_badge_plots_errors_against_the_threshold(run):
    _before, after, _log = run
    badge = after[GATE_NODE]
    report = badge["report"]
    assert report["node"] == GATE_NODE and report["kind"] == "cg_gate"  # keyed apart from the TaylorSeer node
    assert f"full {report['full_steps']}/{STEPS} steps" in badge["text"] and f"threshold {report['threshold']}" in \
        badge["text"]
    assert report["full_steps"] == report["step_map"].count("F")
    assert (badge["cells"], badge["fullCells"]) == (STEPS, report["step_map"].count("F"))
    assert badge["thresholdLines"] == 1
    assert badge["errorDots"] == sum(e is not None for e in report["gate_errors"]) > 0


def test_no_layout_jump_and_no_console_errors_from_the_extension(run):
    before, after, log = run
    for node in (TS_NODE, GATE_NODE):
        assert before[node]["state"] == "idle" and after[node]["state"] == "ready"
        assert after[node]["size"] == before[node]["size"]
        assert after[node]["badgeHeight"] == pytest.approx(before[node]["badgeHeight"])
    ours = [entry["message"] for entry in log
            if entry["level"] in ("SEVERE", "WARNING") and "taylor_forecast" in entry["message"]]
    assert not ours


# The graph's columns, left to right (node ids): the first stacked top-down; in the others the TaylorSeer
# branch's node on top and the gate branch's on one row below, so every link runs left to right.
GRAPH_COLUMNS = (("1", "3", "4", "5"), (TS_NODE, GATE_NODE), ("6", "10"), ("7", "11"), ("8", "12"))
CANVAS_LEFT, CANVAS_TOP = 120, 170  # page pixels clear of the side bar, the tabs and the floating menus


def _crop(driver, box: list[float]):
    from PIL import Image

    time.sleep(1.0)  # the DOM widgets follow the canvas on its next frames
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    return image.crop(tuple(round(v) for v in box))


def _save(image, name: str) -> None:
    image.save(ARTIFACTS / f"browser_{name}.png")
    if os.environ.get("TAYLOR_UPDATE_DOCS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        image.save(REPO / "docs" / f"{name}.png")


def _graph_picture(driver):
    """The whole graph as it ran, laid out in ``GRAPH_COLUMNS`` and scaled to fit the page."""
    driver.set_window_size(1900, 1150)
    # Close any dialog the front end opened over the canvas (e.g. one raised while the graph was loading).
    driver.execute_script("document.querySelectorAll('.p-dialog-close-button, .p-dialog-header-close')"
                          ".forEach(button => button.click())")
    time.sleep(1.0)
    box = driver.execute_script("""
      const app = window.comfyAPI.app.app, canvas = app.canvas, title = LiteGraph.NODE_TITLE_HEIGHT;
      const [columns, left0, top0] = arguments;
      const branches = columns.filter(c => c.length === 2).map(c => c.map(id => app.graph.getNodeById(id)));
      const split = Math.max(...branches.map(([top]) => title + top.size[1] + 30));  // the gate branch's row
      let x = 0, bottom = 0;
      for (const column of columns) {
        const nodes = column.map(id => app.graph.getNodeById(id));
        let y = 0;
        for (const node of nodes) {
          if (column.length === 2 && node === nodes[1]) y = split;
          node.pos = [x, y + title];
          y += title + node.size[1] + 30;
        }
        bottom = Math.max(bottom, y);
        x += Math.max(...nodes.map(n => n.size[0])) + 60;
      }
      const rect = canvas.canvas.getBoundingClientRect();
      const scale = Math.min(1, (rect.right - left0 - 20) / x, (rect.bottom - top0 - 20) / bottom);
      canvas.ds.scale = scale;
      canvas.ds.offset = [(left0 - rect.left) / scale, (top0 - rect.top) / scale];
      canvas.setDirty(true, true);
      return [left0 - 20, top0 - 20, left0 + x * scale, top0 + bottom * scale];
    """, [list(column) for column in GRAPH_COLUMNS], CANVAS_LEFT, CANVAS_TOP)
    return _crop(driver, box)


def _screenshots(driver) -> None:
    """The whole page, the whole graph, and a crop of the two patch nodes side by side."""
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser_badge_page.png"))
    _save(_graph_picture(driver), "graph")
    box = driver.execute_script("""
      // The two nodes side by side at 100 % zoom, clear of the side bar, the tabs and the floating menus.
      const app = window.comfyAPI.app.app, canvas = app.canvas, title = LiteGraph.NODE_TITLE_HEIGHT;
      const nodes = arguments[0].map(id => app.graph.getNodeById(id));
      const rect = canvas.canvas.getBoundingClientRect(), left = arguments[1] - rect.left;
      const top = arguments[2] - rect.top;
      let x = 0;
      for (const node of nodes) { node.pos = [5000 + x, 5000]; x += node.size[0] + 40; }
      canvas.ds.scale = 1;
      canvas.ds.offset = [left - 5000, top + title - 5000];
      canvas.setDirty(true, true);
      const height = Math.max(...nodes.map(n => n.size[1]));
      return [arguments[1] - 20, arguments[2] - 20, arguments[1] + x, arguments[2] + title + height + 20];
    """, [TS_NODE, GATE_NODE], CANVAS_LEFT, CANVAS_TOP)
    _save(_crop(driver, box), "badge")


_WIDGETS = """
const node = window.comfyAPI.app.app.graph.getNodeById(arguments[0]);
return node.widgets.filter(w => w.name !== 'taylor_forecast_badge')
  .map(w => ({name: w.name, value: w.value, disabled: !!w.disabled}));
"""


def test_the_budget_is_the_first_widget_and_greys_out_interval(run, browser):
    """A budget (target_speedup > 0) makes interval unused: it is greyed out, and usable again at 0."""
    widgets = browser.execute_script(_WIDGETS, TS_NODE)
    assert widgets[0]["name"] == "target_speedup" and widgets[0]["value"] == 3.0
    assert {w["name"]: w["disabled"] for w in widgets}["interval"] is True
    set_budget = ("const app = window.comfyAPI.app.app, node = app.graph.getNodeById(arguments[0]);"
                  "node.widgets.find(w => w.name === 'target_speedup').value = arguments[1];"
                  "app.graph.setDirtyCanvas(true, true);")
    interval_disabled = ("return window.comfyAPI.app.app.graph.getNodeById(arguments[0]).widgets"
                         ".find(w => w.name === 'interval').disabled === arguments[1]")
    for budget, disabled in ((0, False), (3.0, True)):
        browser.execute_script(set_budget, TS_NODE, budget)
        _wait(browser, interval_disabled, 30, f"interval disabled {disabled} at target_speedup {budget}", TS_NODE,
              disabled)


def test_the_last_report_is_shown_again_after_a_page_reload(run, browser, request):
    """The report is kept in the node's properties, which the front end restores with the workflow."""
    _before, after, _log = run
    open_front_end(browser, server_harness.comfy_server(request).url)  # a reload of the page
    ready = ("const node = window.comfyAPI.app.app.graph.getNodeById(arguments[0]);"
             "return node?.taylorForecastBadge?.dataset.state === 'ready'")
    _wait(browser, ready, 60, "the restored badge", TS_NODE)
    restored = browser.execute_script(_STATE, [TS_NODE])[TS_NODE]
    assert restored["report"] == after[TS_NODE]["report"] and restored["text"] == after[TS_NODE]["text"]


def test_a_bypassed_node_clears_its_badge(run, browser):
    """A bypassed node's last run is not what the graph does: its badge and stored report are cleared."""
    mode = ("const app = window.comfyAPI.app.app; app.graph.getNodeById(arguments[0]).mode = arguments[1];"
            "app.graph.setDirtyCanvas(true, true);")
    state = ("const node = window.comfyAPI.app.app.graph.getNodeById(arguments[0]);"
             "return node.taylorForecastBadge.dataset.state === arguments[1]")
    browser.execute_script(mode, TS_NODE, 4)
    _wait(browser, state, 30, "the bypassed badge", TS_NODE, "bypassed")
    cleared = browser.execute_script("const node = window.comfyAPI.app.app.graph.getNodeById(arguments[0]);"
                                     "return [node.taylorForecastReport ?? null, "
                                     "node.properties.taylor_forecast_report ?? null]", TS_NODE)
    assert cleared == [None, None]
    browser.execute_script(mode, TS_NODE, 0)
    _wait(browser, state, 30, "the idle badge", TS_NODE, "idle")
