"""Rules every migration keeps, read from its source with ``ast`` (no database).

A rolling upgrade migrates a live database while the previous release still writes to it, so:
- an index added to a table that existed before the revision is built CONCURRENTLY
  (``postgresql_concurrently=True``) inside ``op.get_context().autocommit_block()``, where a plain
  ``CREATE INDEX`` would hold a lock that stops every write to the table until it is built; the
  same for dropping one. An index created in the revision that creates its table needs neither:
  the table is new and empty.
- each revision says why in its docstring and has a ``downgrade()`` that does something.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
INDEX_CALLS = {"create_index", "drop_index"}
RAW_INDEX_SQL = re.compile(
    r"\b(?P<verb>CREATE(?:\s+UNIQUE)?|DROP)\s+INDEX\b(?P<rest>.*)", re.IGNORECASE | re.DOTALL
)
RAW_TABLE = re.compile(r"\bON\s+(?:ONLY\s+)?(?:\w+\.)?\"?(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class IndexOperation:
    """One index built or dropped, where it stands in the file and how it is run."""

    function: str
    kind: str
    table: str | None  # None: not a literal the checker can read, so treated as an old table
    line: int
    concurrent: bool
    in_autocommit_block: bool


def revision_files() -> list[Path]:
    return sorted(path for path in VERSIONS.glob("*.py") if path.name != "__init__.py")


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments, so ``create_index(..., TABLE, ...)`` reads."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _text(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _called(node: ast.Call) -> str | None:
    """``op.create_index(...)`` and ``create_index(...)`` are both ``create_index``."""
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def created_tables(tree: ast.Module) -> set[str]:
    constants = _constants(tree)
    return {
        table
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _called(node) == "create_table" and node.args
        if (table := _text(node.args[0], constants)) is not None
    }


class _IndexFinder(ast.NodeVisitor):
    """Walks a module keeping track of the enclosing function, of ``autocommit_block()`` and of
    ``batch_alter_table(table) as batch_op`` blocks (whose ``create_index`` names no table)."""

    def __init__(self, constants: dict[str, str]) -> None:
        self.constants = constants
        self.function = "<module>"
        self.autocommit_depth = 0
        self.batches: dict[str, str | None] = {}
        self.found: list[IndexOperation] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    def visit_With(self, node: ast.With) -> None:
        autocommit = any(
            self._is_call(item.context_expr, "autocommit_block") for item in node.items
        )
        for item in node.items:
            expr = item.context_expr
            if self._is_call(expr, "batch_alter_table") and isinstance(
                item.optional_vars, ast.Name
            ):
                assert isinstance(expr, ast.Call)
                table = expr.args[0] if expr.args else _keyword(expr, "table_name")
                self.batches[item.optional_vars.id] = _text(table, self.constants)
        self.autocommit_depth += autocommit
        self.generic_visit(node)
        self.autocommit_depth -= autocommit

    def visit_Call(self, node: ast.Call) -> None:
        kind = _called(node)
        if kind in INDEX_CALLS:
            self._record(node, kind, self._table(node))
        elif kind == "execute" and node.args:
            self._record_raw(node, _text(node.args[0], self.constants))
        self.generic_visit(node)

    def _table(self, node: ast.Call) -> str | None:
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        if isinstance(receiver, ast.Name) and receiver.id in self.batches:
            return self.batches[receiver.id]
        table = _keyword(node, "table_name")
        if table is None and len(node.args) > 1:
            table = node.args[1]
        return _text(table, self.constants)

    def _record(self, node: ast.Call, kind: str, table: str | None) -> None:
        flag = _keyword(node, "postgresql_concurrently")
        concurrent = isinstance(flag, ast.Constant) and flag.value is True
        self._add(kind, table, node.lineno, concurrent)

    def _record_raw(self, node: ast.Call, sql: str | None) -> None:
        """``op.execute("CREATE INDEX ...")``: the same rule for an index written in SQL."""
        matched = RAW_INDEX_SQL.search(sql or "")
        if matched is None:
            return
        kind = "drop_index" if matched["verb"].upper() == "DROP" else "create_index"
        on = RAW_TABLE.search(matched["rest"])
        concurrent = re.match(r"\s*CONCURRENTLY\b", matched["rest"], re.IGNORECASE) is not None
        self._add(kind, on.group(1) if on else None, node.lineno, concurrent)

    def _add(self, kind: str, table: str | None, line: int, concurrent: bool) -> None:
        self.found.append(
            IndexOperation(self.function, kind, table, line, concurrent, self.autocommit_depth > 0)
        )

    @staticmethod
    def _is_call(node: ast.expr, name: str) -> bool:
        return isinstance(node, ast.Call) and _called(node) == name


def index_operations(tree: ast.Module) -> list[IndexOperation]:
    finder = _IndexFinder(_constants(tree))
    finder.visit(tree)
    return finder.found


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _does_nothing(function: ast.FunctionDef) -> bool:
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # its docstring
    if not body:
        return True
    if len(body) > 1:
        return False
    only = body[0]
    if isinstance(only, ast.Pass):
        return True
    if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant):
        return True  # `...`
    if isinstance(only, ast.Raise) and only.exc is not None:
        raised = only.exc.func if isinstance(only.exc, ast.Call) else only.exc
        return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def breaches(source: str, name: str = "<migration>") -> list[str]:
    """What is wrong with one revision's source, one line each; empty when it keeps the rules."""
    tree = ast.parse(source, name)
    found = []
    if not (ast.get_docstring(tree) or "").strip():
        found.append(f"{name}: no docstring saying why")
    functions = _functions(tree)
    if "upgrade" not in functions:
        found.append(f"{name}: no upgrade()")
    if "downgrade" not in functions:
        found.append(f"{name}: no downgrade()")
    elif _does_nothing(functions["downgrade"]):
        found.append(f"{name}: downgrade() does nothing")
    new_tables = created_tables(tree)
    for op in index_operations(tree):
        if op.table in new_tables:
            continue  # built with its table, empty: nothing to lock out
        where = f"{name}:{op.line}: {op.kind} on {op.table or 'an unnamed table'} in {op.function}"
        if not op.concurrent:
            found.append(f"{where} without postgresql_concurrently=True")
        if not op.in_autocommit_block:
            found.append(f"{where} outside `with op.get_context().autocommit_block():`")
    return found


def check_file(path: Path) -> list[str]:
    return breaches(path.read_text(), path.name)


# --- the rules on the real migrations ---------------------------------------------------------


def test_there_are_migrations_to_check() -> None:
    assert len(revision_files()) >= 7, VERSIONS


@pytest.mark.parametrize("path", revision_files(), ids=lambda path: path.stem)
def test_each_migration_keeps_the_rules(path: Path) -> None:
    assert check_file(path) == []


def test_the_checker_sees_the_real_index_operations() -> None:
    """A checker that found no index would pass every file: it must see those we know of."""
    seen = {path.stem: index_operations(ast.parse(path.read_text())) for path in revision_files()}
    assert len(seen["0001_tenants_keys_jobs"]) == 9
    (finished, dropped) = seen["0002_jobs_finished_index"]
    assert (finished.function, finished.kind, finished.table) == ("upgrade", "create_index", "jobs")
    assert finished.concurrent and finished.in_autocommit_block
    assert (dropped.function, dropped.kind, dropped.table) == ("downgrade", "drop_index", "jobs")
    assert dropped.concurrent and dropped.in_autocommit_block


# --- the checker catches what it should, and only that ----------------------------------------

HEADER = '''"""A sample revision."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "0001"
'''


def sample(upgrade: str, downgrade: str = "    op.drop_column('jobs', 'x')\n") -> str:
    return HEADER + "\n\ndef upgrade():\n" + upgrade + "\n\ndef downgrade():\n" + downgrade


GOOD = {
    "an index on an old table, concurrently": sample(
        "    with op.get_context().autocommit_block():\n"
        "        op.create_index('ix_jobs_x', 'jobs', ['x'], postgresql_concurrently=True)\n",
        "    with op.get_context().autocommit_block():\n"
        "        op.drop_index('ix_jobs_x', table_name='jobs', postgresql_concurrently=True)\n",
    ),
    "an index with its new table": sample(
        "    op.create_table('things', sa.Column('id', sa.Integer(), primary_key=True))\n"
        "    op.create_index('ix_things_id', 'things', ['id'])\n",
        "    op.drop_table('things')\n",
    ),
    "raw SQL, concurrently": sample(
        "    with op.get_context().autocommit_block():\n"
        "        op.execute('CREATE INDEX CONCURRENTLY ix_jobs_y ON jobs (y)')\n",
        "    with op.get_context().autocommit_block():\n"
        "        op.execute('DROP INDEX CONCURRENTLY ix_jobs_y')\n",
    ),
}

BAD = {
    "a plain index on an old table": (
        sample("    op.create_index('ix_jobs_x', 'jobs', ['x'])\n", "    op.drop_table('jobs')\n"),
        ["without postgresql_concurrently=True", "outside `with"],
    ),
    "concurrently, but inside the migration's transaction": (
        sample(
            "    op.create_index('ix_jobs_x', 'jobs', ['x'], postgresql_concurrently=True)\n",
            "    op.drop_table('jobs')\n",
        ),
        ["create_index on jobs in upgrade outside `with"],
    ),
    "in an autocommit block, but not concurrently": (
        sample(
            "    with op.get_context().autocommit_block():\n"
            "        create_index('ix_jobs_x', table_name='jobs', columns=['x'])\n",
            "    op.drop_table('jobs')\n",
        ),
        ["create_index on jobs in upgrade without postgresql_concurrently=True"],
    ),
    "a plain drop of an old table's index in upgrade": (
        sample("    op.drop_index('ix_jobs_due', table_name='jobs')\n", "    op.drop_table('x')\n"),
        ["drop_index on jobs in upgrade without", "drop_index on jobs in upgrade outside"],
    ),
    "a plain drop in downgrade of what upgrade built concurrently": (
        sample(
            "    with op.get_context().autocommit_block():\n"
            "        op.create_index('ix_jobs_x', 'jobs', ['x'], postgresql_concurrently=True)\n",
            "    op.drop_index('ix_jobs_x', table_name='jobs')\n",
        ),
        ["drop_index on jobs in downgrade without", "drop_index on jobs in downgrade outside"],
    ),
    "a batch's index on an old table": (
        sample(
            "    with op.batch_alter_table('jobs') as batch_op:\n"
            "        batch_op.create_index('ix_jobs_x', ['x'])\n",
            "    op.drop_table('x')\n",
        ),
        ["create_index on jobs in upgrade without", "create_index on jobs in upgrade outside"],
    ),
    "a table the checker cannot read counts as old": (
        sample("    op.create_index('ix_x', name_of_table(), ['x'])\n", "    op.drop_table('x')\n"),
        ["create_index on an unnamed table in upgrade without"],
    ),
    "raw SQL on an old table": (
        sample(
            "    op.execute('CREATE UNIQUE INDEX ix_jobs_y ON jobs (y)')\n",
            "    op.drop_table('x')\n",
        ),
        ["create_index on jobs in upgrade without", "create_index on jobs in upgrade outside"],
    ),
    "no docstring": (
        sample("    op.add_column('jobs', sa.Column('x', sa.Integer()))\n").replace(
            '"""A sample revision."""', ""
        ),
        ["no docstring saying why"],
    ),
    "a downgrade that is only pass": (
        sample("    op.add_column('jobs', sa.Column('x', sa.Integer()))\n", "    pass\n"),
        ["downgrade() does nothing"],
    ),
    "a downgrade that refuses": (
        sample(
            "    op.add_column('jobs', sa.Column('x', sa.Integer()))\n",
            '    """No way back."""\n    raise NotImplementedError\n',
        ),
        ["downgrade() does nothing"],
    ),
    "no downgrade at all": (
        HEADER + "\n\ndef upgrade():\n    op.add_column('jobs', sa.Column('x', sa.Integer()))\n",
        ["no downgrade()"],
    ),
}


@pytest.mark.parametrize("source", GOOD.values(), ids=list(GOOD))
def test_a_good_sample_passes(source: str, tmp_path: Path) -> None:
    path = tmp_path / "9999_good.py"
    path.write_text(source)
    assert check_file(path) == []


@pytest.mark.parametrize(("source", "expected"), BAD.values(), ids=list(BAD))
def test_a_bad_sample_is_caught(source: str, expected: list[str], tmp_path: Path) -> None:
    path = tmp_path / "9999_bad.py"
    path.write_text(source)
    found = check_file(path)
    assert found, "the checker let a bad migration through"
    for words in expected:
        assert any(words in line for line in found), (words, found)
    assert all(line.startswith("9999_bad.py") for line in found)
