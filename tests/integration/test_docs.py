"""The README and docs/ cannot drift from what they describe: the adapter tables (support matrix, auto
thresholds), the nodes' schema as the server serves it (input tables), the node defaults and the shipped
workflows (recommended settings), and the files they link."""

from __future__ import annotations

import json
import re

import pytest
import server_harness
from comfy_harness import REPO
from node_docs import BLOCK, rewrite

DOCS = REPO / "docs"
NODE_TYPES = {"TaylorSeer Apply": "TaylorSeerApply", "CG-Taylor Gate": "CGTaylorGate"}
SETTING = re.compile(r"(\w+)=(\S+)")


def readme() -> str:
    return (REPO / "README.md").read_text()


def table_rows(text: str) -> list[list[str]]:
    """The cells of a markdown table's body rows (header and rule excluded)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines if "---" not in line]


def matrix_table() -> list[list[str]]:
    """The support matrix's rows (the first table of docs/support.md)."""
    section = (DOCS / "support.md").read_text().split("\n# Support matrix", 1)[-1].split("\n## ", 1)[0]
    return table_rows(section)


def settings_rows() -> list[dict]:
    """The README's recommended settings: per row the node type, its settings and the workflows named."""
    block = readme().split("<!-- settings -->", 1)[1].split("<!-- /settings -->", 1)[0]
    rows = []
    for model, node, settings, workflows, _expect in table_rows(block):
        values = {name: json.loads(value) if value[0].isdigit() or value[0] == "-" else value
                  for name, value in SETTING.findall(settings.strip("`"))}
        rows.append({"model": model, "node": NODE_TYPES[node], "settings": values,
                     "workflows": re.findall(r"`([\w.]+)`", workflows), "defaults": "defaults" in workflows})
    return rows


def api_graph(name: str) -> dict:
    path = REPO / "workflows" / "api" / f"{name}_api.json"
    return json.loads((path if path.exists() else REPO / "workflows" / f"{name}_api.json").read_text())


def test_gate_defaults_table_is_generated_from_the_adapter_table(host):
    assert host.pack_module("nodes.adapters.families").gate_defaults_markdown() in readme()


def test_support_matrix_is_the_generated_one(host):
    generated = [list(row) for row in host.pack_module("nodes.adapters.families").support_matrix_rows()]
    assert [cells[:5] for cells in matrix_table()] == generated


def test_every_row_names_real_tests_and_every_adapter_family_has_a_tiny_model(host):
    families = host.pack_module("nodes.adapters.families")
    tested = {model.family for model in host.TINY_MODELS.values()}
    existing = {path.name for path in (REPO / "tests").rglob("test_*.py")}
    for cells in matrix_table():
        family, verified = cells[0], cells[5]
        named = re.findall(r"`(test_\w+\.py)`", verified)
        assert set(named) <= existing, f"{family}: docs/support.md names a test file that does not exist"
        assert ("test_families.py" in named) == (family in tested), f"{family}: tiny model and matrix disagree"
    for family in families.FAMILIES.values():
        assert family.name in tested, f"{family.name} has a residual adapter but no tiny model in TINY_MODELS"


def test_recommended_settings_are_the_shipped_workflows_and_the_defaults(host):
    """Every row's settings are those of every node of its type in each workflow it names; the defaults row
    is the node's defaults (its schema's, what a fresh node and an API prompt that leaves an input out get)."""
    defaults = host.schema_inputs("TaylorSeerApply")
    rows = settings_rows()
    assert {row["node"] for row in rows} == set(NODE_TYPES.values())
    assert sum(row["defaults"] for row in rows) == 1
    for row in rows:
        assert row["settings"], f"{row['model']}: no settings"
        if row["defaults"]:
            assert row["node"] == "TaylorSeerApply"
            assert row["settings"] == {name: defaults[name].default for name in row["settings"]}, row["model"]
            continue
        assert row["workflows"], f"{row['model']}: names no workflow"
        for name in row["workflows"]:
            ours = [node for node in api_graph(name).values() if node["class_type"] == row["node"]]
            assert ours, f"{name} has no {row['node']}"
            for node in ours:
                assert {key: node["inputs"][key] for key in row["settings"]} == row["settings"], name


def test_every_shipped_taylorseer_workflow_has_a_settings_row():
    named = {name for row in settings_rows() for name in row["workflows"]}
    shipped = {path.name.removesuffix("_api.json") for path in (REPO / "workflows").rglob("*_api.json")}
    assert named == shipped


def input_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """(node type, input) -> the cells of its row, from every marked input table in ``text``."""
    return {(match.group(2), cells[0]): cells for match in BLOCK.finditer(text) for cells in table_rows(match.group(3))}


def choices(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def test_the_input_tables_are_the_servers_schema(request):
    """The README's input tables are what ``scripts/node_docs.py`` makes from this server's ``/object_info``
    (types, defaults, ranges and tooltips, so tooltips are written once, in the nodes). The README is generated
    on the oldest supported ComfyUI: a newer one may offer more combo choices (feature-detected ones, e.g. fp8
    formats), never fewer."""
    server = server_harness.comfy_server(request)
    from workflow_build.server import fetch_object_info

    text = readme()
    assert text.count("<!-- inputs:") == 3
    documented, served = input_rows(text), input_rows(rewrite(text, fetch_object_info(server.url)))
    assert documented.keys() == served.keys(), "README input tables are stale: run scripts/node_docs.py"
    for key, cells in documented.items():
        theirs = served[key]
        assert cells[:3] + cells[4:] == theirs[:3] + theirs[4:], f"{key}: stale, run scripts/node_docs.py"
        if cells[1] == "COMBO":
            assert choices(cells[3]) <= choices(theirs[3]), f"{key}: the README offers a choice the server lacks"
        else:
            assert cells[3] == theirs[3], f"{key}: stale range, run scripts/node_docs.py"


def test_first_screen_has_install_settings_picture_and_the_two_commands():
    text = readme()
    first = text.split("\n## Nodes", 1)[0]
    for heading in ("## Install", "## Which node and settings for my model", "## For developers and CI"):
        assert heading in first
    developers = first.split("## For developers and CI", 1)[1]
    assert "bash scripts/demo.sh" in developers and "bash scripts/test.sh" in developers
    assert "](docs/graph.png)" in first and "EasyCache" in first


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md"))])
def test_relative_links_point_to_files(page):
    path = REPO / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" not in target:
            assert (path.parent / target).exists(), f"{page} links {target}, which does not exist"


def test_docs_pages_are_linked_from_the_readme():
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)", readme()))
    assert {p.name for p in DOCS.glob("*.md")} <= linked
