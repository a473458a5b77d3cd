// TaylorSeer forecast badge: after each run, every TaylorSeer Apply / CG-Taylor Gate node shows what its cache
// did: the step map (full vs forecast per step), full computes / steps, the compute ratio, the cache memory
// and, for the gate, its per-step error against the threshold.
//
// Data: the server sends one "taylor_forecast.report" websocket message per sampling run, keyed by the id of
// the node that patched the model (nodes/report.py builds it, nodes/telemetry.py sends it). The badge is a
// DOM widget of fixed height, added when the node is created, so a report never resizes the node.
// The last report of a node is also kept as `node.taylorForecastReport`, as the badge element's `data-report`
// attribute (JSON) and in the node's properties (`taylor_forecast_report`: saved with the workflow, so a page
// reload shows it again). A bypassed or muted node's report is cleared. TaylorSeer Apply's `interval` is greyed
// out while `target_speedup` > 0 (a budget) makes it unused.

import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const EVENT = "taylor_forecast.report";
const NODE_TYPES = new Set(["TaylorSeerApply", "CGTaylorGate"]);
const WIDGET_NAME = "taylor_forecast_badge";
// Content height in px; the front end keeps a 10 px margin above and below a DOM widget.
const CONTENT_HEIGHT = { TaylorSeerApply: 74, CGTaylorGate: 112 };
const WIDGET_MARGIN = 20;
const MIN_WIDTH = 300;
const COLORS = { full: "#d9822b", forecast: "#3fa45b", none: "#555", threshold: "#e05555", error: "#7fb2ff" };
const SVG_NS = "http://www.w3.org/2000/svg";
const PROPERTY = "taylor_forecast_report"; // node property holding the last report (saved with the workflow)
const ACTIVE_MODE = 0; // LiteGraph's mode ALWAYS; 2 = muted (never), 4 = bypassed

const STYLE = `
.taylor-forecast-badge { box-sizing: border-box; height: 100%; padding: 4px 6px; overflow: hidden;
  font: 11px/1.35 system-ui, sans-serif; color: var(--input-text, #ddd); background: rgba(0,0,0,.25);
  border-radius: 4px; display: flex; flex-direction: column; gap: 3px; pointer-events: none; }
.taylor-forecast-badge .tf-text { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.taylor-forecast-badge .tf-map { display: flex; gap: 1px; height: 12px; flex: none; }
.taylor-forecast-badge .tf-cell { flex: 1 1 0; min-width: 1px; border-radius: 1px; }
.taylor-forecast-badge .tf-plot { flex: 1 1 auto; min-height: 0; width: 100%; }
`;

function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = n;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${size.toFixed(2)} ${units[unit]}`;
}

/** The badge's text for one report: what a user reads, and what the browser test asserts on. Steps (what a
 * speed-up budget counts, the map's cells) and model evaluations (what the compute costs) are said apart. */
export function badgeText(report) {
  const gated = report.kind === "cg_gate";
  const calibrated = report.calibrated ? ", calibrated" : "";
  const detail = gated ? `threshold ${report.threshold}` : `level ${report.level}${calibrated}`;
  const fullSteps = report.full_steps ?? [...report.step_map].filter((c) => c === "F").length;
  const stepRatio = report.step_ratio ?? (fullSteps ? report.steps / fullSteps : 1);
  return [
    `${gated ? "CG-Taylor" : "TaylorSeer"}: full ${fullSteps}/${report.steps} steps (${stepRatio.toFixed(2)}x)`,
    `evaluations: full ${report.full}/${report.evaluations}, ${report.compute_ratio.toFixed(2)}x less compute`,
    `cache peak ${formatBytes(report.cache_peak_bytes)}, ${detail}`,
  ];
}

function cellColor(char) {
  if (char === "F") return COLORS.full;
  if (char === "-") return COLORS.none;
  return COLORS.forecast;
}

function svg(tag, attributes) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** Per-step gate error (dots, blue when forecast, orange when computed) against the threshold (red line). */
function gatePlot(report) {
  const width = 200;
  const height = 40;
  const plot = svg("svg", { class: "tf-plot", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const errors = report.gate_errors ?? [];
  const top = Math.max(report.threshold ?? 0, ...errors.filter((e) => e != null)) * 1.15 || 1;
  const x = (i) => ((i + 0.5) / Math.max(errors.length, 1)) * width;
  const y = (v) => height - (Math.min(v, top) / top) * (height - 2) - 1;
  plot.append(svg("rect", { x: 0, y: 0, width, height, fill: "rgba(255,255,255,0.04)" }));
  if (report.threshold != null) {
    const ty = y(report.threshold);
    plot.append(svg("line", { x1: 0, x2: width, y1: ty, y2: ty, stroke: COLORS.threshold, "stroke-width": 1,
      "stroke-dasharray": "3 2", "vector-effect": "non-scaling-stroke", class: "tf-threshold" }));
  }
  errors.forEach((error, i) => {
    if (error == null) return;
    const full = report.step_map[i] === "F";
    plot.append(svg("rect", { x: x(i) - 1.5, y: y(error) - 1.5, width: 3, height: 3, class: "tf-error",
      fill: full ? COLORS.full : COLORS.error }));
  });
  return plot;
}

function render(element, report) {
  element.replaceChildren();
  element.dataset.report = JSON.stringify(report);
  element.dataset.state = "ready";
  for (const line of badgeText(report)) {
    const text = document.createElement("div");
    text.className = "tf-text";
    text.textContent = line;
    element.append(text);
  }
  const map = document.createElement("div");
  map.className = "tf-map";
  map.title = `step map: ${report.step_map} (orange = full compute, green = forecast)`;
  for (const char of report.step_map) {
    const cell = document.createElement("div");
    cell.className = `tf-cell ${char === "F" ? "full" : "forecast"}`;
    cell.style.background = cellColor(char);
    map.append(cell);
  }
  element.append(map);
  if (report.kind === "cg_gate") element.append(gatePlot(report));
}

function renderIdle(element, node) {
  element.replaceChildren();
  const active = node.mode === ACTIVE_MODE;
  element.dataset.state = active ? "idle" : "bypassed";
  const text = document.createElement("div");
  text.className = "tf-text";
  const name = node.comfyClass === "CGTaylorGate" ? "CG-Taylor" : "TaylorSeer";
  text.textContent = !active ? `${name}: bypassed, no run to show`
    : node.comfyClass === "CGTaylorGate" ? `${name}: the step map and gate errors show here after a run`
      : `${name}: the step map shows here after a run`;
  element.append(text);
}

/** Show ``report`` on the node's badge and keep it in the node's properties (saved with the workflow, so the
 * badge shows it again after a page reload or when the workflow is opened again). */
function showReport(node, report) {
  node.taylorForecastReport = report;
  node.properties ??= {};
  node.properties[PROPERTY] = report;
  if (node.taylorForecastBadge) {
    node.taylorForecastBadge.dataset.nodeId = String(node.id);
    render(node.taylorForecastBadge, report);
  }
}

/** Forget the node's last report (bypassed or muted: that run is not what the graph does now). */
function clearReport(node) {
  delete node.taylorForecastReport;
  if (node.properties) delete node.properties[PROPERTY];
  if (node.taylorForecastBadge) renderIdle(node.taylorForecastBadge, node);
}

/** TaylorSeer Apply's ``interval`` is greyed out while a ``target_speedup`` budget (> 0) makes it unused. */
function syncInterval(node) {
  const budget = node.widgets?.find((w) => w.name === "target_speedup");
  const interval = node.widgets?.find((w) => w.name === "interval");
  if (!budget || !interval) return;
  const unused = Number(budget.value) > 0;
  if (interval.disabled !== unused) {
    interval.disabled = unused;
    node.setDirtyCanvas?.(true, false);
  }
}

/** Keep the badge and the widgets in step with the node's mode and values (run on every draw: cheap). */
function syncNode(node) {
  const state = node.taylorForecastBadge?.dataset.state;
  if (node.mode !== ACTIVE_MODE && state !== "bypassed") clearReport(node);
  else if (node.mode === ACTIVE_MODE && state === "bypassed") renderIdle(node.taylorForecastBadge, node);
  syncInterval(node);
}

function addBadge(node) {
  const element = document.createElement("div");
  element.className = "taylor-forecast-badge";
  element.dataset.nodeId = String(node.id);
  const height = CONTENT_HEIGHT[node.comfyClass] + WIDGET_MARGIN;
  const widget = node.addDOMWidget(WIDGET_NAME, "taylor_forecast_badge", element, {
    serialize: false, // not an input: never in the prompt...
    hideOnZoom: true,
    getMinHeight: () => height,
    getMaxHeight: () => height,
    getHeight: () => height,
  });
  widget.serialize = false; // ...nor in the saved workflow's widgets_values
  node.taylorForecastBadge = element;
  renderIdle(element, node);
  const size = node.computeSize();
  node.setSize([Math.max(node.size[0], size[0], MIN_WIDTH), Math.max(node.size[1], size[1])]);
  chain(node, "onAdded", function () {
    element.dataset.nodeId = String(this.id); // ids may be reassigned when the node enters a graph
  });
  chain(node, "onConfigure", function () { // a loaded or restored workflow: its saved report, if still active
    const saved = this.properties?.[PROPERTY];
    if (saved && this.mode === ACTIVE_MODE) showReport(this, saved);
    syncNode(this);
  });
  chain(node, "onDrawForeground", function () {
    syncNode(this);
  });
  syncInterval(node);
}

/** Run ``extra`` after the node's own ``name`` handler (if any), keeping that handler's return value. */
function chain(node, name, extra) {
  const original = node[name];
  node[name] = function (...args) {
    const result = original?.apply(this, args);
    extra.apply(this, args);
    return result;
  };
}

/** The node a report is keyed by: its id in the root graph, or in a subgraph for "outer:inner" ids. */
function findNode(id) {
  const graph = app.graph;
  if (!graph || id == null) return null;
  const direct = graph.getNodeById(id);
  if (direct) return direct;
  const last = String(id).split(":").pop();
  for (const subgraph of graph.subgraphs?.values?.() ?? []) {
    const node = subgraph.getNodeById(last);
    if (node) return node;
  }
  return null;
}

function onReport(event) {
  const report = event.detail;
  const node = findNode(report?.node);
  if (!node || !NODE_TYPES.has(node.comfyClass)) return;
  showReport(node, report);
  node.setDirtyCanvas?.(true, false);
  try { // the workflow changed (its node properties): let the front end persist it now, as after an edit
    app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
  } catch (error) {
    console.warn("taylor_forecast: the workflow's change tracker refused the report", error);
  }
}

app.registerExtension({
  name: "taylor_forecast.badge",
  setup() {
    const style = document.createElement("style");
    style.textContent = STYLE;
    document.head.append(style);
    api.addEventListener(EVENT, onReport);
  },
  nodeCreated(node) {
    if (NODE_TYPES.has(node.comfyClass)) addBadge(node);
  },
});
