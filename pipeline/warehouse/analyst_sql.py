"""What an analyst's SQL may be: one statement that only reads. ClickHouse's own parser decides, not ours.

`checked(client, sql)` asks the connection it will run on (a reader, see `client.connect_reader`):
1. `formatQuerySingleLine(sql)`, with the text as a bound parameter, so nothing of it runs: ClickHouse
   parses it and refuses more than one statement ("Multi-statements are not allowed"); the result is the
   statement in canonical form, without comments, which is what runs afterwards. chDB executes every
   statement of a multi-statement text and clickhouse-connect's chDB backend put its per-query settings
   after the last one only: `SELECT 1; DROP TABLE alerts` once dropped the table.
2. `EXPLAIN AST` of that one statement: the parsed tree, which `refusal` reads:
   - the statement is SELECT (WITH, UNION, INTERSECT, EXCEPT, parentheses), SHOW, DESCRIBE or EXPLAIN of
     one of those; anything else (INSERT, `WITH ... INSERT`, ALTER, SET, ...) is refused;
   - no table function (`file()`, `url()`, `s3()`, `remote()`, even `numbers()`: a function in a table's
     place), and not the `file()` function that reads a local file into a string; readonly = 1 refuses
     some table functions itself but let `DESCRIBE file('/etc/hostname')`, `SELECT file(...)` and
     `numbers()` through;
   - no `INTO OUTFILE`, which chDB writes even under readonly = 1.
Settings cannot be changed at all on a reader (readonly = 1): a `SETTINGS readonly = 0` clause fails in
ClickHouse, already at step 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.errors import QueryRefused, WarehouseError
from pipeline.warehouse.client import translate

# Root nodes of EXPLAIN AST for the statements an analyst may run (`Show...` and `SHOW ...` cover every SHOW).
_READING = (
    "SelectWithUnionQuery",
    "SelectIntersectExceptQuery",
    "SelectQuery",
    "DescribeQuery",
    "Show",
    "SHOW",
)
_EXPLAIN = "Explain"
# Statements that may carry INTO OUTFILE (and its COMPRESSION) as `Literal` children of their own (a
# `SelectQuery`'s literals are its LIMIT and the like: it is the union above it that has the output).
_WITH_OUTPUT = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "DescribeQuery", "Show", "SHOW",
                _EXPLAIN, "ExistsTableQuery")  # fmt: skip
# Functions that reach outside the database wherever they stand (not only in a table's place).
_OUTSIDE_FUNCTIONS = frozenset({"file"})
_NODE = re.compile(r"^( *)(\S+)(?: (\S+))?")
_SYNTAX = re.compile(
    r"Syntax error[^:]*: (?:failed at position \d+[^:]*: )?(.*?)(?:: In scope|\. \(SYNTAX_ERROR|$)"
)


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # e.g. SelectWithUnionQuery, Function, Literal, TableExpression
    name: str  # the word after the kind: a function's name, a literal's value ("" if none)
    parent: _Node | None


def checked(client: Any, sql: str, parameters: dict[str, Any] | None = None) -> str:
    """The one statement `sql` holds, in canonical form, if an analyst may run it; `QueryRefused` otherwise.
    `client` is the connection it will run on (a reader: nothing here can write)."""
    try:
        statement = client.query("SELECT formatQuerySingleLine({sql:String})", parameters={"sql": sql})
        canonical = str(statement.result_rows[0][0])
        tree = client.query(f"EXPLAIN AST {canonical}", parameters=parameters or None)
    except Exception as exc:  # chDB and the HTTP driver raise unrelated types: translated here
        text = str(exc)
        if "Multi-statements are not allowed" in text:
            raise QueryRefused(
                "one statement at a time: the text holds more than one (a ';' outside a string)"
            ) from exc
        if "SYNTAX_ERROR" in text or "Syntax error" in text:
            found = _SYNTAX.search(text)
            raise QueryRefused(f"not valid SQL: {found.group(1) if found else text[:300]}") from exc
        raise translate(exc, "query refused") from exc
    reason = refusal([str(row[0]) for row in tree.result_rows])
    if reason is not None:
        raise QueryRefused(reason)
    return canonical


def refusal(explained: list[str]) -> str | None:
    """Why the statement whose `EXPLAIN AST` lines these are may not run, or None if it may."""
    nodes = _nodes(explained)
    if not nodes:
        raise WarehouseError("EXPLAIN AST returned nothing")
    root = nodes[0]
    if root.kind == _EXPLAIN:
        explained_query = next((n for n in nodes if n.parent is root), None)
        if explained_query is None or not explained_query.kind.startswith(_READING):
            return "EXPLAIN is allowed of reading statements only"
    elif not root.kind.startswith(_READING):
        return (
            f"only reading statements run here (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN); this is {root.kind}"
        )
    for node in nodes:
        parent = node.parent
        if (
            node.kind == "Function"
            and parent is not None
            and parent.kind in ("TableExpression", "InsertQuery")
        ):
            return f"table functions are not allowed here: {node.name}()"
        if node.kind == "Function" and node.name.lower() in _OUTSIDE_FUNCTIONS:
            return f"{node.name}() reads files outside the database: not allowed here"
        if node.kind == "Literal" and parent is not None and parent.kind.startswith(_WITH_OUTPUT):
            return "INTO OUTFILE is not allowed here: the result comes back to you (pulse query --format csv)"
    return None


def _nodes(explained: list[str]) -> list[_Node]:
    """The tree of `EXPLAIN AST` (one node per line, one space of indentation per level), parents linked."""
    nodes: list[_Node] = []
    path: list[_Node] = []  # the current node's ancestors and itself, by depth
    for line in explained:
        match = _NODE.match(line)
        if match is None or not match.group(2):
            continue
        depth = len(match.group(1))
        del path[depth:]
        parent = path[-1] if path else None
        name = match.group(3) or ""
        node = _Node(match.group(2), "" if name.startswith("(") else name, parent)
        nodes.append(node)
        path.append(node)
    return nodes
