"""`nrr`: the command line, a thin layer over the library.

Exit codes: 0 proceed / success, 1 caution, 2 avoid, 3 usage or input error.
"""

from __future__ import annotations

import gc
import os
import sys

# One BLAS thread: the in-loop kernels are single matrix-vector products, where a thread pool's
# wake-up costs more than it saves (benchmarks/similarity_bench.py). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from nrr_stats.errors import NrrInputError  # noqa: E402
from nrr_stats.secrets import redact_text  # noqa: E402

EXIT_INPUT_ERROR = 3


def main(argv: list[str] | None = None) -> int:
    """Run `nrr` and return its exit code; every usage or input error exits 3 with one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"]:  # the in-loop command: no typer application to build
        from nrr_stats.cli.fast import fast_check

        collecting = gc.isenabled()
        gc.disable()  # one short check: the collector's passes over the modules it loads free nothing
        try:
            code = fast_check(args[1:])
        except NrrInputError as error:
            print(f"nrr: {redact_text(error.one_line())}", file=sys.stderr)
            return EXIT_INPUT_ERROR
        except (KeyboardInterrupt, BrokenPipeError):
            return EXIT_INPUT_ERROR
        except Exception as error:
            return _internal_error(error)
        finally:
            if collecting:
                gc.enable()
        if code is not None:
            return code
    return _typer_main(args)


def _internal_error(error: Exception) -> int:
    """A bug: still one line and code 3, never a verdict's code."""
    if os.environ.get("NRR_DEBUG"):
        raise error
    print(
        redact_text(
            f"nrr: internal error: {error.__class__.__name__}: {' '.join(str(error).split())}"
            " (set NRR_DEBUG=1 for the traceback)"
        ),
        file=sys.stderr,
    )
    return EXIT_INPUT_ERROR


def _quiet_third_parties() -> None:
    """Keep libraries' warnings and log chatter (PyTensor's BLAS notice, deprecations) off the
    terminal: nrr's own lines are the output. NRR_DEBUG=1 shows them."""
    if os.environ.get("NRR_DEBUG"):
        return
    import logging
    import warnings

    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings(
        "ignore", module=r"(pymc|pytensor|arviz|xarray|nutpie|matplotlib|numba)(\.|$)"
    )
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    for name in ("pytensor", "pymc", "arviz", "nutpie", "matplotlib", "httpx", "anthropic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _typer_main(argv: list[str]) -> int:
    import typer

    _quiet_third_parties()

    # Each module registers its commands on `app` when imported.
    from nrr_stats.cli import (  # noqa: F401
        backtest,
        core,
        curate,
        loop,
        models,
        parse,
    )
    from nrr_stats.cli.app import app

    try:
        result = app(args=argv, standalone_mode=False)
    except NrrInputError as error:
        print(f"nrr: {redact_text(error.one_line())}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        print("nrr: aborted", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except (KeyboardInterrupt, BrokenPipeError):
        return EXIT_INPUT_ERROR
    except typer.TyperException as error:  # usage errors: click's code 2 would read as "avoid"
        print(f"nrr: {error.format_message()}".replace("\n", " "), file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as error:  # a bug: still one line and code 3, never a verdict's code
        return _internal_error(error)
    return result if isinstance(result, int) else 0


def run() -> None:
    code = main()
    watched = sys.gettrace() or sys.getprofile() or os.environ.get("NRR_DEBUG")
    if sys.argv[1:2] == ["check"] and not watched:  # a profiler or debugger reports at exit
        _exit_without_teardown(code)
    sys.exit(code)


def _exit_without_teardown(code: int) -> None:
    """End `nrr check`'s process as sys.exit would, less the interpreter's teardown of every
    module and array (~15% of a cold check's CPU; the kernel frees the memory anyway): atexit
    handlers run and the output is flushed first."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a reader gone (what main() answers to BrokenPipeError)
            code = EXIT_INPUT_ERROR
    os._exit(code)
