"""Where a file shipped inside the nrr_stats package is: one lookup for every caller."""

from __future__ import annotations

from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """The path of `parts` inside `package` (an nrr_stats package, e.g. "nrr_stats.parser").

    Read beside the package's own files when they are on disk (an installed wheel or a
    checkout); only otherwise through importlib.resources, which loads tempfile and zipfile
    machinery (~6 ms of a cold `nrr check`)."""
    here = Path(__file__).parent.joinpath(*package.split(".")[1:], *parts)
    if here.exists():
        return here
    from importlib import resources

    return Path(str(resources.files(package).joinpath(*parts)))
