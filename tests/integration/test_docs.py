"""The README's tables cannot drift from the adapter table they describe."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme() -> str:
    return (REPO / "README.md").read_text()


def matrix_rows() -> dict[str, str]:
    section = readme().split("## Support matrix", 1)[1].split("\n## ", 1)[0]
    return {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}


def test_gate_defaults_table_is_generated_from_the_adapter_table(host):
    assert host.pack_module("nodes.families").gate_defaults_markdown() in readme()


def test_every_family_has_a_support_row_and_every_row_names_real_tests(host):
    families = host.pack_module("nodes.families").FAMILIES
    rows = matrix_rows()
    for (_module, class_name), family in families.items():
        assert family.name in rows, f"README support matrix has no row for {family.name}"
        assert f"`{class_name}`" in rows[family.name]
    tests = {path.name for path in (REPO / "tests").rglob("test_*.py")}
    for row in rows.values():
        for named in re.findall(r"`(test_\w+\.py)`", row):
            assert named in tests, f"README names {named}, which does not exist"
