"""`nrr mcp`: nrr-stats as Model Context Protocol tools over stdio (the official `mcp` SDK,
`pip install 'nrr-stats[mcp]'`).

One server process keeps the bank open: an agent pays the import cost once and each check
reads only the rows ingested since the last. The tools are coroutines so that every call runs
on the server's one event-loop thread, the thread that opened the bank (SQLite connections
stay in their thread); a check takes milliseconds, so nothing waits long. Tools: check, ingest, similar, patterns,
sessions, records, adopt, reject; each returns JSON (the same fields as the CLI's).
"""

from __future__ import annotations

import functools
from typing import Any

from nrr_stats.errors import NrrInputError


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's server class and the error a tool raises to answer with a message."""
    try:
        from mcp.server.mcpserver import MCPServer  # mcp >= 2
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        try:
            from mcp.server.fastmcp import FastMCP as MCPServer  # mcp 1.x
            from mcp.server.fastmcp.exceptions import ToolError
        except ImportError:
            raise NrrInputError(
                "`nrr mcp` needs the MCP SDK: pip install 'nrr-stats[mcp]'"
            ) from None
    return MCPServer, ToolError


def _answering(tool: Any, tool_error: type[Exception]) -> Any:
    """The tool with an input error (no such session, bad log) answered as the tool's error
    message, the one line the CLI would print, instead of an unexpected exception."""

    @functools.wraps(tool)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except NrrInputError as error:
            raise tool_error(error.one_line()) from None

    return wrapped


def build_server(bank: Any = None, *, rules: Any = None) -> Any:
    """The MCP server over one bank (URL, path or open Bank; it must exist)."""
    from nrr_stats.check import Checker

    server_class, tool_error = _sdk()
    checker = Checker(bank, rules=rules)
    opened = checker.bank
    server = server_class(
        "nrr-stats",
        instructions=(
            "Before each experiment call `check` with the proposal (a description, KEY = value "
            "lines or a unified diff); proceed / caution / avoid come with P(keep) and its 90% "
            "interval. After the experiment's row is appended to results.tsv call `ingest`."
        ),
    )

    @_tool(server, tool_error)
    async def check(
        proposal: str,
        session: str | None = None,
        description: str | None = None,
        brief: bool = False,
    ) -> dict[str, Any]:
        """Answer a proposal before running it: verdict (proceed / caution / avoid), reason,
        p_keep with its 90% interval and counts, similar failures, patterns, NK records.
        `session`: id, name or log path. `brief`: also a text under 1 KB in `brief`."""
        from nrr_stats.answer_fields import brief as brief_text

        answer = checker.check(proposal, session=session, description=description)
        if brief:
            return {"verdict": answer["verdict"], "brief": brief_text(answer)}
        return answer

    @_tool(server, tool_error)
    async def ingest(path: str, session_name: str | None = None) -> dict[str, Any]:
        """Store a results log in the bank (idempotent: re-run after every experiment)."""
        from nrr_stats.bank.ingest import ingest_logs

        (summary,) = ingest_logs(opened, [path], session_name=session_name, rules=rules)
        return summary.as_dict()

    @_tool(server, tool_error)
    async def similar(
        description: str,
        count: int = 5,
        failures_only: bool = True,
        session: str | None = None,
    ) -> dict[str, Any]:
        """The past experiments most like a description (cosine similarity), best first."""
        from nrr_stats.check import pick_session
        from nrr_stats.similarity.search import similar_experiments_in_bank

        session_id = pick_session(opened, session)["id"] if session is not None else None
        rows = similar_experiments_in_bank(
            opened, description, count, failures_only=failures_only, session_id=session_id
        )
        return {"experiments": rows}

    @_tool(server, tool_error)
    async def patterns(session: str | None = None, include_empty: bool = False) -> dict[str, Any]:
        """Per (category, direction) cell: count, keeps, posterior mean, 90% interval,
        P(rate below the session's base rate); `include_empty` adds the prior's cells."""
        from nrr_stats.check import cell_json

        cells = checker.patterns(session, prior_cells=include_empty)
        return {"cells": [cell_json(cell) for cell in cells]}

    @_tool(server, tool_error)
    async def sessions() -> dict[str, Any]:
        """The bank's sessions: id, name, path, rows, keep rate with its 90% interval."""
        from nrr_stats.sessions import list_sessions

        return {"sessions": list_sessions(opened)}

    @_tool(server, tool_error)
    async def records(session: str | None = None, depth: int | None = None) -> dict[str, Any]:
        """The curated negative-knowledge records, with their adoption history."""
        from nrr_stats.check import pick_session
        from nrr_stats.curator import fetch_records
        from nrr_stats.curator.store import events_for

        session_id = pick_session(opened, session)["id"] if session is not None else None
        rows = fetch_records(opened, session_id=session_id, depth=depth)
        history = events_for(opened, [r["id"] for r in rows])
        return {
            "records": [
                {
                    "id": r["id"],
                    "depth": r["depth"],
                    "source": r["source"],
                    "evidence_weight": r["evidence_weight"],
                    "record": r["record"],
                    "history": history.get(r["id"], []),
                }
                for r in rows
            ]
        }

    @_tool(server, tool_error)
    async def adopt(record_id: int, actor: str = "agent", reason: str = "") -> dict[str, Any]:
        """Record that the agent adopts an NK record before its next proposal."""
        from nrr_stats.curator import record_event

        return record_event(opened, record_id, "adopt", actor, reason)

    @_tool(server, tool_error)
    async def reject(record_id: int, reason: str, actor: str = "agent") -> dict[str, Any]:
        """Record that the agent rejects an NK record, and why (a reason is required)."""
        from nrr_stats.curator import record_event

        return record_event(opened, record_id, "reject", actor, reason)

    server.nrr_checker = checker  # kept alive with the server; closed by `serve`
    return server


def _tool(server: Any, tool_error: type[Exception]) -> Any:
    def register(function: Any) -> Any:
        server.tool()(_answering(function, tool_error))
        return function

    return register


def serve(bank: Any = None, *, rules: Any = None) -> None:
    """Run the server over stdio until the client disconnects."""
    server = build_server(bank, rules=rules)
    try:
        server.run("stdio")
    finally:
        server.nrr_checker.close()
