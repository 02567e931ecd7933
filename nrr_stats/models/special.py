"""The special functions of the answer path: scipy's compiled ufuncs, loaded without the
`scipy.special` package, nor `scipy`'s and `scipy._lib`'s package setup.

`import scipy.special` sets up scipy's array-API layer (it clones the numpy namespace, which
loads numpy.f2py): 0.2-0.4 s, most of a cold `nrr check`. The functions themselves live in the
compiled module `scipy.special._ufuncs`, which needs none of that. They are the very objects
`scipy.special` exports (`scipy.special.betainc is scipy.special._ufuncs.betainc`), so every
number is the same. `scipy`'s own setup (a numpy version check, the test runner, which loads
subprocess) is skipped too: the compiled modules need only the packages' folders. Should the
module not load that way (another scipy layout), the package is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

# The packages scipy.special._ufuncs and the compiled modules it loads live in.
_PACKAGES = (("scipy", ""), ("scipy._lib", "_lib"), ("scipy.special", "special"))


def _ufuncs() -> Any:
    """scipy.special._ufuncs, loaded under its own name, the packages above left unimported."""
    if "scipy.special" in sys.modules or "scipy.special._ufuncs" in sys.modules:
        import scipy.special._ufuncs as loaded

        return loaded
    found_scipy = importlib.util.find_spec("scipy")  # finds the folder, runs nothing
    if found_scipy is None or not found_scipy.submodule_search_locations:
        raise ImportError("no scipy package")
    root = Path(next(iter(found_scipy.submodule_search_locations)))
    found = [
        root / "special" / f"_ufuncs{suffix}"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (root / "special" / f"_ufuncs{suffix}").is_file()
    ]
    if not found:
        raise ImportError("no compiled scipy.special._ufuncs")
    # While it loads, its imports of compiled siblings (scipy._cyutility, scipy._lib._ccallback,
    # scipy.special._special_ufuncs, ...) need packages to resolve against: bare ones, removed
    # afterwards so a later `import scipy.special` runs the real packages (which then reuse the
    # modules loaded here, the same objects).
    stubs = {}
    for name, folder in _PACKAGES:
        if name not in sys.modules:
            stubs[name] = sys.modules[name] = types.ModuleType(name)
            stubs[name].__path__ = [str(root / folder)]
    before = set(sys.modules)
    try:
        spec = importlib.util.spec_from_file_location("scipy.special._ufuncs", found[0])
        module = importlib.util.module_from_spec(spec)
        sys.modules["scipy.special._ufuncs"] = module
        spec.loader.exec_module(module)
    except BaseException:
        for name in set(sys.modules) - before | {"scipy.special._ufuncs"}:
            sys.modules.pop(name, None)  # a clean slate for the usual import
        raise
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
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


def logit(p: np.ndarray | float, eps: float = 1e-9) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps] so a rate of 0 or 1 stays finite."""
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


__all__ = ["betainc", "betaincinv", "betaln", "digamma", "expit", "gammaln", "logit"]
