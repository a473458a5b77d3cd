"""The shipped workflows against a real ComfyUI server, the way users load and queue them.

- Every UI graph (``workflows/*.json``) against the server's ``/object_info``: node types, widget count, order,
  types, ranges and combo choices, model files named as in the official template, link types, no dangling link.
- The committed files are what ``scripts/build_workflows.py`` builds from the installed templates and the
  server's node definitions: a node whose inputs change fails here until the workflows are rebuilt.
- ComfyUI's template browser lists them, with their thumbnails, from the pack's ``workflows/`` folder.
- Every API graph (``workflows/api/*_api.json``), unmodified, passes the server's own validation (``POST
  /prompt``) with stand-in files of the official names in a temporary models folder; its run then stops at the
  first stand-in that is not a real model (an empty file), as expected.
- ``E2E`` graphs run to their saved image or video with tiny models of the right architecture under the
  official names (``workflow_stand_in_models``); the test shrinks the latent and the steps. Substituted there,
  and only there: every text-encoder loader by ``TaylorTestTinyTextEncoder`` (a real ``comfy.sd.CLIP`` around a
  tiny encoder: the stock T5/UMT5/CLIP encoders have fixed multi-GB sizes in ComfyUI's code), and Flux's
  UNETLoader by ``TaylorTestConfigUNETLoader`` (ComfyUI's detection plus the test override of Flux's head count,
  which tiny Flux's shapes cannot carry). Model sampling, TaylorSeer/CG-Taylor, samplers, VAE decoding and saving
  are the shipped graph's own nodes. The log must show each TaylorSeer Apply's exact plan.

On a ComfyUI other than the one the workflows were built on (another comfyui-workflow-templates release than
the graph's ``templates_version``: ComfyUI pins it with its core nodes and front end; ``built_here``), core nodes
whose definition changed since the build (``changed_core_nodes``: other widgets or outputs, e.g. 0.33's SaveImage
output, CreateVideo's ``bit_depth``, SaveVideo's dynamic ``format``) are checked for type and links only in the
UI-graph check; what that front end makes of them (graphToPrompt) must pass the server's validation, and the
other nodes must convert exactly to the shipped API graph. Model files are compared with the official template
only where the installed template is the build's file; titles and the rebuild comparison only where built here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
import urllib.request

import pytest
from comfy_harness import REPO

sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "demo"))
sys.path.insert(0, str(REPO / "tests" / "workflow_stand_ins"))

from test_browser_badge import browser, open_front_end  # noqa: E402, F401  (browser: a fixture, Chromium or a skip)
from workflow_build import PACK_ID, build, widgets  # noqa: E402
from workflow_build.api import ui_to_api  # noqa: E402
from workflow_build.server import fetch_object_info  # noqa: E402
from workflow_build.specs import SAMPLERS, SPECS  # noqa: E402

WORKFLOWS = REPO / "workflows"
UI_GRAPHS = sorted(p.stem for p in WORKFLOWS.glob("*.json") if not p.stem.endswith("_api"))
API_GRAPHS = sorted(p.name[:-len("_api.json")] for p in (WORKFLOWS / "api").glob("*_api.json"))
LOADERS = {"UNETLoader", "CLIPLoader", "DualCLIPLoader", "VAELoader", "CheckpointLoaderSimple", "FP8Loader"}
E2E = {  # workflow -> the comfy_harness.TINY_MODELS entry its diffusion model file holds
    "flux1_dev_taylorseer": "flux", "flux1_dev_cg_taylor_gate": "flux", "chroma1_hd_taylorseer": "chroma",
    "wan2.1_t2v_taylorseer": "wan", "wan2.2_t2v_14B_taylorseer": "wan", "hunyuan_video_t2v_taylorseer":
    "hunyuan_video", "qwen_image_taylorseer": "qwen_image", "sd3.5_large_taylorseer": "sd3",
}
STEPS, SPLIT = 10, 6  # steps of a KSampler run; KSamplerAdvanced pairs run 0..SPLIT and SPLIT..2*SPLIT
SUMMARY = re.compile(r"\[TaylorSeer\] steps (\d+), evaluations (\d+), full (\d+), forecast (\d+),")
MAP = re.compile(r"\[TaylorSeer\] map: ([A-Z]+)")
LEVEL = re.compile(r"\[TaylorSeer\] steps \d+, .*, level (\w+)")
GATE = re.compile(r"\[TaylorSeer\] gate errors: (.*) \(threshold")


def load(name: str, api: bool = False) -> dict:
    path = WORKFLOWS / "api" / f"{name}_api.json" if api else WORKFLOWS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def model_files(ui: dict, object_info: dict, changed: frozenset[int] = frozenset()) -> set[tuple[str, str]]:
    """(models folder, file) of every model-file widget of the graph (``changed`` nodes aside)."""
    files = set()
    for node in ui["nodes"]:
        if node["type"] not in widgets.VIRTUAL_NODES and node["id"] not in changed:
            for name, value in widgets.widget_dict(node, object_info[node["type"]]).items():
                if name in widgets.MODEL_FOLDERS:
                    files.add((widgets.MODEL_FOLDERS[name], value))
    return files


def listed_models(ui: dict) -> set[tuple[str, str]]:
    """(folder, file) of the ``properties.models`` of the graph's active nodes (what the Note and the front end's
    missing-models dialog list)."""
    return {(m["directory"], m["name"]) for n in ui["nodes"] if n.get("mode", 0) == 0
            for m in n.get("properties", {}).get("models", [])}


def official_files(ui: dict) -> set[str] | None:
    """Every file name the official template the graph was built on loads or lists (``properties.models``); None
    for the demo's graph (built from its own node list: no template to compare with)."""
    if ui["extra"]["taylor_forecast"]["template"] is None:
        return None
    template = json.loads(build.template_path(ui["extra"]["taylor_forecast"]["template"]).read_text(encoding="utf-8"))
    names = set()
    for node in template["nodes"]:
        names |= {m["name"] for m in node.get("properties", {}).get("models", [])}
        names |= {v for v in node.get("widgets_values") or [] if isinstance(v, str) and v.endswith(".safetensors")}
    return names


def built_here(ui: dict) -> bool:
    """Whether this host has the comfyui-workflow-templates release the graph was built from. ComfyUI pins that
    release together with its core nodes and its front end, so only on such a host can the core nodes' widgets,
    outputs and display names, the template's files and the front end's output be expected to be the build's."""
    return build.templates_version() == ui["extra"]["taylor_forecast"]["templates_version"]


def changed_core_nodes(name: str, object_info: dict) -> frozenset[int]:
    """Ids of the graph's core nodes (not the pack's) whose definition on this server is not the one the graph was
    built with: other widgets than the shipped API graph's widget inputs (the build's, in order; for a muted node,
    not in that graph, another widget count) or other outputs.
    Empty where the graph was built here: there every node must match exactly."""
    ui, api = load(name), load(name, api=True)
    if built_here(ui):
        return frozenset()
    changed = set()
    for node in ui["nodes"]:
        if node["type"] in widgets.VIRTUAL_NODES or node.get("properties", {}).get("cnr_id") == PACK_ID:
            continue
        info = object_info.get(node["type"])
        if info is None:
            continue  # reported as an unknown type
        names = widgets.widget_names(info)
        if str(node["id"]) in api:
            built = [k for k, v in api[str(node["id"])]["inputs"].items() if not is_link(v)]
            widgets_changed = [n for n in names if n != widgets.CONTROL] != built
        else:  # muted, not in the API graph: only its widget count is known
            widgets_changed = len(names) != len(node.get("widgets_values") or [])
        if widgets_changed or [o["type"] for o in node.get("outputs", [])] != list(info["output"]):
            changed.add(node["id"])
    return frozenset(changed)


def template_unchanged(name: str) -> bool:
    """Whether the installed official template of the graph is the file it was built from."""
    meta = load(name)["extra"]["taylor_forecast"]
    if meta["template"] is None:  # the demo's graph: built from scripts/workflow_build/demo.py alone
        return True
    return hashlib.sha256(build.template_path(meta["template"]).read_bytes()).hexdigest() == meta["template_sha256"]


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


@pytest.fixture(scope="module")
def server(host, tmp_path_factory):
    """A real ComfyUI server whose extra model paths hold the stand-in files, plus the test-only nodes."""
    from comfy_client import ComfyClient
    from server_harness import models_server
    from workflow_stand_in_models import write_stand_ins

    base = tmp_path_factory.mktemp("workflow_server")
    files = set().union(*(listed_models(load(name)) for name in UI_GRAPHS))
    write_stand_ins(base / "models", files)
    with models_server(base, {folder for folder, _ in files}, REPO / "tests" / "workflow_stand_ins") as comfy:
        object_info = fetch_object_info(comfy.url)
        yield {"client": ComfyClient(comfy.url, timeout_s=300), "url": comfy.url, "object_info": object_info,
               "log": comfy.log_path, "output": base / "output"}


def test_every_family_ships_a_ui_and_an_api_graph():
    from workflow_build.demo import DEMO

    assert UI_GRAPHS == API_GRAPHS == sorted([*(s.name for s in SPECS), DEMO.name])
    assert all((WORKFLOWS / f"{name}.jpg").is_file() for name in UI_GRAPHS)


@pytest.mark.parametrize("name", UI_GRAPHS)
def test_ui_graph_matches_the_servers_node_definitions(server, name):
    from workflow_checks import ui_graph_problems

    ui, object_info = load(name), server["object_info"]
    changed = changed_core_nodes(name, object_info)  # on another ComfyUI: the front-end test checks them
    official = official_files(ui) if template_unchanged(name) else None  # else the build's template is not here
    assert ui_graph_problems(ui, object_info, official, changed) == []
    assert model_files(ui, object_info, changed) == listed_models(ui)  # the Note and the stand-ins list them all


def test_committed_files_are_what_the_script_builds(server):
    stale_templates = [n for n in UI_GRAPHS if not template_unchanged(n)]
    if stale_templates:
        pytest.skip(f"the installed comfyui-workflow-templates differ from the ones {stale_templates} were built "
                    "from: rebuild with scripts/build_workflows.py to compare")
    built = build.build_all(server["object_info"], with_thumbnails=False)
    stale = [p for p, text in built.json_files.items() if (REPO / p).read_text(encoding="utf-8") != text]
    assert stale == [], "rebuild with: .host/venv/bin/python scripts/build_workflows.py"


def test_the_template_browser_lists_them_with_thumbnails(server):
    with urllib.request.urlopen(server["url"] + "/workflow_templates", timeout=30) as response:
        listed = json.loads(response.read())
    assert set(UI_GRAPHS) <= set(listed["taylor_forecast"])
    assert not any(n.endswith("_api") and n[:-4] in UI_GRAPHS for n in listed["taylor_forecast"])
    for name in UI_GRAPHS:  # the front end fetches <name>.json and shows <name>.jpg from the pack's route
        base = f"{server['url']}/api/workflow_templates/taylor_forecast/{name}"
        with urllib.request.urlopen(base + ".json", timeout=30) as response:
            assert json.loads(response.read()) == load(name)
        with urllib.request.urlopen(base + ".jpg", timeout=30) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.read()[:3] == b"\xff\xd8\xff"


_LOAD_AND_CONVERT = """
const done = arguments[arguments.length - 1];
const app = window.comfyAPI.app.app;
app.loadGraphData(arguments[0], true, true).then(async () => {
  const unknown = app.graph.nodes.filter(n => !(n.type in LiteGraph.registered_node_types)).map(n => n.type);
  done({prompt: (await app.graphToPrompt()).output, nodes: app.graph.nodes.length, unknown});
}).catch(e => done({error: String(e)}));
"""


def test_the_front_end_loads_each_ui_graph_and_queues_its_api_graph(server, request):
    """The real front end (comfyui-frontend-package) loads every UI graph with every node type known, and its own
    UI-to-API conversion (graphToPrompt, what the Queue button sends) gives the shipped API graph (titles aside:
    they are the front end's localized names); core nodes changed on this ComfyUI: its conversion validates."""
    driver = request.getfixturevalue("browser")
    open_front_end(driver, server["url"])
    for name in UI_GRAPHS:
        ui = load(name)
        result = driver.execute_async_script(_LOAD_AND_CONVERT, ui)
        assert "error" not in result, (name, result)
        assert result["unknown"] == [] and result["nodes"] == len(ui["nodes"]), (name, result["unknown"])
        changed = {str(i) for i in changed_core_nodes(name, server["object_info"])}
        shipped = load(name, api=True)
        assert without_titles(result["prompt"], changed) == without_titles(shipped, changed), name
        if changed:  # what this front end makes of the core nodes defined otherwise here must pass validation
            assert set(result["prompt"]) == set(shipped), name
            stops_at_a_stand_in(server["client"], result["prompt"])


def without_titles(prompt: dict, leave_out: set[str] = frozenset()) -> dict:
    return {k: {**v, "_meta": None} for k, v in prompt.items() if k not in leave_out}


def wait_quietly(client, prompt_id: str) -> dict:
    """The finished history entry, whether the run succeeded or failed."""
    from comfy_client import ComfyError

    try:
        return client.wait(prompt_id)
    except ComfyError:
        with urllib.request.urlopen(f"{client.server}/history/{prompt_id}", timeout=30) as response:
            return json.loads(response.read())[prompt_id]


@pytest.mark.parametrize("name", API_GRAPHS)
def test_api_graph_passes_the_servers_validation(server, name):
    api = load(name, api=True)
    if built_here(load(name)):  # elsewhere core nodes and display names may differ: the front-end test converts
        assert api == ui_to_api(load(name), server["object_info"])
    stops_at_a_stand_in(server["client"], api)


def stops_at_a_stand_in(client, prompt: dict) -> None:
    """``prompt`` passes the server's validation and its run fails at an empty stand-in file only."""
    prompt_id = client.queue(prompt)  # raises ComfyError with the node errors if validation fails
    entry = wait_quietly(client, prompt_id)
    errors = [data for kind, data in entry["status"]["messages"] if kind == "execution_error"]
    for error in errors:  # validated; then the run stops at the first empty stand-in file, nowhere else
        assert error["node_type"] in LOADERS or error["exception_message"].startswith("ERROR: clip input is invalid"), \
            error


def tiny_prompt(api: dict, tiny: str) -> dict:
    """The API graph with the test substitutions (see the module docstring) for ``TINY_MODELS[tiny]``, a 32x32
    latent and few steps."""
    from comfy_harness import TINY_MODELS

    model = TINY_MODELS[tiny]
    pooled = model.extra(0).get("pooled_output")
    text = {"context_dim": model.context[1], "pooled_dim": 0 if pooled is None else pooled.shape[-1]}
    unet_loader = "TaylorTestConfigUNETLoader" if model.override else None
    prompt = copy.deepcopy(api)
    encoder = {"class_type": "TaylorTestTinyTextEncoder", "inputs": dict(text), "_meta": {"title": "stand-in"}}
    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind in ("CLIPLoader", "DualCLIPLoader"):
            prompt[node_id] = copy.deepcopy(encoder)
        elif kind == "CheckpointLoaderSimple":  # its CLIP output: the checkpoint stand-in has no text encoder
            prompt["text_stand_in"] = copy.deepcopy(encoder)
            for other in prompt.values():
                for key, value in other["inputs"].items():
                    if value == [node_id, 1]:
                        other["inputs"][key] = ["text_stand_in", 0]
        elif kind == "UNETLoader" and unet_loader:
            node["class_type"] = unet_loader
        elif kind in ("EmptySD3LatentImage", "EmptyHunyuanLatentVideo"):
            inputs.update(width=32, height=32, **({"length": 5} if "length" in inputs else {}))
        elif kind in ("KSampler", "BasicScheduler"):
            inputs["steps"] = STEPS
        elif kind == "KSamplerAdvanced":
            inputs["steps"] = 2 * SPLIT
            inputs.update({k: SPLIT for k in ("start_at_step", "end_at_step") if 0 < inputs[k] < 10000})
    return prompt


def run_steps(prompt: dict, sampler: dict) -> int:
    """Steps of one run of a sampler, or of the custom sampler a guider feeds (its BasicScheduler's)."""
    inputs = sampler["inputs"]
    if sampler["class_type"] == "KSampler":
        return inputs["steps"]
    if sampler["class_type"] == "KSamplerAdvanced":
        return min(inputs["end_at_step"], inputs["steps"]) - inputs["start_at_step"]
    (custom,) = [n for n in prompt.values() if n["class_type"] == "SamplerCustomAdvanced"
                 and prompt[n["inputs"]["guider"][0]] is sampler]
    return prompt[custom["inputs"]["sigmas"][0]]["inputs"]["steps"]


def expected_plans(prompt: dict) -> list[str]:
    """taylor_core's plan of every TaylorSeer Apply node, for the run of the sampler it feeds."""
    plans = []
    for node in prompt.values():
        if node["class_type"] in SAMPLERS and prompt[node["inputs"]["model"][0]]["class_type"] == "TaylorSeerApply":
            steps = run_steps(prompt, node)
            plans.append(node_schedule(prompt[node["inputs"]["model"][0]]["inputs"]).plan(
                steps, [True] * steps).render())
    return sorted(plans)


def node_schedule(v: dict):
    """taylor_core's schedule of a TaylorSeer Apply node's inputs (an interval, or a speed-up budget)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from taylor_core.schedule import make_schedule

    return make_schedule(v["interval"], v["target_speedup"], v["warmup_steps"], v["tail_steps"],
                         v["start_percent"], v["end_percent"])


@pytest.mark.parametrize("name", sorted(E2E))
def test_api_graph_runs_to_an_output_with_tiny_models(server, name):
    client, log = server["client"], server["log"]
    prompt = tiny_prompt(load(name, api=True), E2E[name])
    start = len(log.read_text(errors="replace"))
    entry = client.run(prompt)
    files = [item for output in entry["outputs"].values() for items in output.values() if isinstance(items, list)
             for item in items if isinstance(item, dict) and "filename" in item]
    assert files, entry["outputs"]
    for item in files:
        assert (server["output"] / item["subfolder"] / item["filename"]).stat().st_size > 0
    text = log.read_text(errors="replace")[start:]
    ours = [n for n in prompt.values() if n["class_type"] in ("TaylorSeerApply", "CGTaylorGate")]
    summaries = SUMMARY.findall(text)
    assert len(summaries) == len(ours), text[-3000:]
    assert sorted(LEVEL.findall(text)) == sorted(n["inputs"].get("level", "residual") for n in ours)  # no fallback
    plans = expected_plans(prompt)
    if plans:  # fixed interval: exactly the plan; the run really forecast
        assert sorted(MAP.findall(text)) == plans
        for _steps, evaluations, full, forecast in summaries:  # counted per evaluation (cond and uncond apart)
            assert int(full) + int(forecast) == int(evaluations) and int(forecast) > 0
    else:  # the gate: its budget spent exactly; it measured the first block's forecast where it was free to decide
        (errors,) = GATE.findall(text)
        (gate,) = (n["inputs"] for n in ours)
        forced = gate["warmup_steps"] + gate["tail_steps"]
        if gate.get("target_speedup"):
            ((_steps, evaluations, full, _forecast),) = summaries
            # round(STEPS / target_speedup) steps in full, every evaluation of them (cond and uncond counted apart)
            assert int(full) * STEPS == round(STEPS / gate["target_speedup"]) * int(evaluations), summaries
            assert 0 < len(errors.split()) <= STEPS - forced, errors  # the pacer decides some steps itself
        else:
            assert len(errors.split()) == STEPS - forced, errors  # warm-up and tail are computed without asking
