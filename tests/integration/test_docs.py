"""The README's tables cannot drift from the adapter tables they describe."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme() -> str:
    return (REPO / "README.md").read_text()


def matrix_table() -> list[list[str]]:
    """The cells of the support matrix's rows (its first table: header and rule excluded)."""
    section = readme().split("\n## Support matrix", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines if "---" not in line]


def test_gate_defaults_table_is_generated_from_the_adapter_table(host):
    assert host.pack_module("nodes.families").gate_defaults_markdown() in readme()


def test_support_matrix_is_the_generated_one(host):
    generated = [list(row) for row in host.pack_module("nodes.families").support_matrix_rows()]
    assert [cells[:5] for cells in matrix_table()] == generated


def test_every_row_names_real_tests_and_every_adapter_family_has_a_tiny_model(host):
    families = host.pack_module("nodes.families")
    tested = {model.family for model in host.TINY_MODELS.values()}
    existing = {path.name for path in (REPO / "tests").rglob("test_*.py")}
    for cells in matrix_table():
        family, verified = cells[0], cells[5]
        named = re.findall(r"`(test_\w+\.py)`", verified)
        assert set(named) <= existing, f"{family}: README names a test file that does not exist"
        assert ("test_families.py" in named) == (family in tested), f"{family}: tiny model and README disagree"
    for family in families.FAMILIES.values():
        assert family.name in tested, f"{family.name} has a residual adapter but no tiny model in TINY_MODELS"
