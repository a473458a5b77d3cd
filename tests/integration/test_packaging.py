"""What the Comfy Registry reads: pyproject.toml, the LICENSE it names, the icon, and ``comfy node validate``
(comfy-cli, requirements-dev.txt) run on the pack as a publisher would."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
import tomllib
from comfy_harness import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pyproject_has_what_the_registry_shows():
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", project["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])  # the registry's X.Y.Z
    assert len(project["description"]) > 40
    assert project["dependencies"] == []  # the pack needs only what ComfyUI brings
    assert "Repository" in project["urls"]  # left empty for the publisher
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert (REPO / "docs" / "icon.png").is_file()  # the icon the publisher links in [tool.comfy] Icon
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])


def test_license_is_the_one_pyproject_names():
    named = PYPROJECT["project"]["license"]["file"]
    text = (REPO / named).read_text()
    assert text.startswith("MIT License") and "THE SOFTWARE IS PROVIDED \"AS IS\"" in text


def test_comfy_node_validate_passes(tmp_path):
    if importlib.util.find_spec("comfy_cli") is None:
        pytest.skip("comfy-cli is not installed in this Python (requirements-dev.txt)")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}  # its config, not the user's
    result = subprocess.run([sys.executable, "-m", "comfy_cli", "--skip-prompt", "--no-enable-telemetry", "node",
                             "validate"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All validation checks passed" in output and "Warning" not in output, output
