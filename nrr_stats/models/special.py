"""The special functions of the answer path: scipy's compiled ufuncs, loaded without the
`scipy.special` package.

`import scipy.special` sets up scipy's array-API layer (it clones the numpy namespace, which
loads numpy.f2py): 0.2-0.4 s, most of a cold `nrr check`. The functions themselves live in the
compiled module `scipy.special._ufuncs`, which needs none of that. They are the very objects
`scipy.special` exports (`scipy.special.betainc is scipy.special._ufuncs.betainc`), so every
number is the same. Should the module not load that way (another scipy layout), the package
is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def _ufuncs() -> Any:
    """scipy.special._ufuncs, loaded under its own name, the package left unimported."""
    if "scipy.special" in sys.modules or "scipy.special._ufuncs" in sys.modules:
        import scipy.special._ufuncs as loaded

        return loaded
    import scipy

    folder = Path(scipy.__file__).parent / "special"
    found = [
        folder / f"_ufuncs{suffix}"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (folder / f"_ufuncs{suffix}").is_file()
    ]
    if not found:
        raise ImportError("no compiled scipy.special._ufuncs")
    # While it loads, its own imports of sibling modules need a package to resolve against:
    # a bare one, removed afterwards so a later `import scipy.special` runs the real package
    # (which then reuses the modules loaded here).
    stub = types.ModuleType("scipy.special")
    stub.__path__ = [str(folder)]
    sys.modules["scipy.special"] = stub
    try:
        spec = importlib.util.spec_from_file_location("scipy.special._ufuncs", found[0])
        module = importlib.util.module_from_spec(spec)
        sys.modules["scipy.special._ufuncs"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["scipy.special._ufuncs"]
            raise
    finally:
        if sys.modules.get("scipy.special") is stub:
            del sys.modules["scipy.special"]
    return module


try:
    _loaded = _ufuncs()
    betainc, betaincinv, betaln, expit, gammaln = (
        _loaded.betainc,
        _loaded.betaincinv,
        _loaded.betaln,
        _loaded.expit,
        _loaded.gammaln,
    )
    digamma = _loaded.psi
except Exception:  # any other layout: the package, as usual
    from scipy.special import betainc, betaincinv, betaln, digamma, expit, gammaln

__all__ = ["betainc", "betaincinv", "betaln", "digamma", "expit", "gammaln"]
