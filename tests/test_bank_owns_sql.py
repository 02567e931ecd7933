"""SQL only inside the bank package: no module of nrr_stats outside nrr_stats/bank/ runs a
statement (`.execute(`, `.executemany(`, `.executescript(`, `.query(`) or holds SQL text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nrr_stats

PACKAGE = Path(nrr_stats.__file__).parent
STATEMENT_CALLS = {"execute", "executemany", "executescript", "query"}
SQL = re.compile(
    r"\b(SELECT\s+.+?\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b",
    re.IGNORECASE | re.DOTALL,
)


def sql_outside_bank(root: Path) -> list[str]:
    """Every statement call and every SQL-looking string literal outside root/bank/."""
    found: dict[str, str] = {}  # one entry a line and kind (an f-string's parts are strings too)
    for path in sorted(root.rglob("*.py")):
        if (root / "bank") in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in STATEMENT_CALLS
            ):
                found[f"{where}:{node.lineno}: .{node.func.attr}("] = ""
            if isinstance(node, ast.JoinedStr):
                text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if SQL.search(text):
                found.setdefault(f"{where}:{node.lineno}: SQL text", f" {text[:60]!r}")
    return [key + text for key, text in found.items()]


def test_no_sql_outside_the_bank_package():
    assert sql_outside_bank(PACKAGE) == []


def test_the_scan_finds_sql_where_there_is_some(tmp_path):
    """The scan is not vacuous: a module outside bank/ with a query or SQL text is reported,
    the same module inside bank/ is not."""
    root = tmp_path / "pkg"
    (root / "bank").mkdir(parents=True)
    (root / "curator").mkdir()
    (root / "bank" / "store.py").write_text('def f(b):\n    b.execute("DELETE FROM t")\n')
    (root / "curator" / "store.py").write_text(
        'def f(bank):\n    return bank.query("SELECT id FROM nk_records")\n'
    )
    (root / "curator" / "text.py").write_text('STATEMENT = f"UPDATE nk_records SET x = {1}"\n')
    found = sql_outside_bank(root)
    assert [line.split(":")[0] for line in found] == [
        "pkg/curator/store.py",
        "pkg/curator/store.py",
        "pkg/curator/text.py",
    ]
