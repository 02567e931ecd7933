"""The loop kit: `nrr init` (the program.md block) and `nrr mcp` (tools over stdio)."""

from __future__ import annotations

from pathlib import Path

import typer

from nrr_stats.cli.app import BankOption, app


@app.command()
def init(
    program: Path = typer.Argument(
        None, help="Write the block into this program.md (replacing an earlier one); else print it."
    ),
    log: str = typer.Option("results.tsv", "--log", help="The loop's results log."),
    bank: str = typer.Option(None, "--bank", help="A bank other than the default to name in it."),
) -> None:
    """The block an autoresearch program.md needs: check before each experiment, ingest after.

    Example: nrr init program.md
    """
    import sys

    from nrr_stats.program_md import program_block, write_block

    block = program_block(log, bank)
    if program is None:
        sys.stdout.write(block)
        return
    done = write_block(program, block)
    print(f"nrr: {done} the nrr-stats block in {program}", file=sys.stderr)


@app.command()
def mcp(bank: str = BankOption) -> None:
    """Serve check, ingest, similar, patterns, sessions, records, adopt and reject as MCP tools
    over stdio (needs `pip install 'nrr-stats\\[mcp]'`); the bank stays open across calls.

    Example: nrr mcp --bank .nrr/bank.db (an MCP client's config names this command)
    """
    from nrr_stats.mcp_server import serve

    serve(bank)
