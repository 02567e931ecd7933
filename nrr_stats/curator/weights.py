"""Diagnosis to evidence weight: the documented table (weights.toml) and its lookup.

A curated failure counts as `weight` failures against its route in the hierarchy's power
likelihood; the weight is layer x scope x degree clipped to [floor, 1], or an explicit override.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nrr_stats.curator.schema import DEGREES, LAYERS, SCOPES
from nrr_stats.errors import NrrInputError
from nrr_stats.package_data import package_file

_AXES: dict[str, tuple[str, ...]] = {"layer": LAYERS, "scope": SCOPES, "degree": DEGREES}


@dataclass(frozen=True)
class WeightTable:
    """Factors per layer, scope and degree, a floor, and per-combination overrides."""

    layer: Mapping[str, float]
    scope: Mapping[str, float]
    degree: Mapping[str, float]
    floor: float = 0.05
    override: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    origin: str = "built-in"

    def weight(self, failure: Mapping[str, Any]) -> float:
        """The evidence weight in (0, 1] of a record's failure block (layer, scope, degree)."""
        key = (failure["layer"], failure["scope"], failure["degree"])
        if key in self.override:
            return _tidy(self.override[key])
        product = self.layer[key[0]] * self.scope[key[1]] * self.degree[key[2]]
        return _tidy(min(1.0, max(self.floor, product)))

    def rows(self) -> list[dict[str, Any]]:
        """Every (layer, scope, degree) combination with its weight, for documentation and reports."""
        return [
            {
                "layer": la,
                "scope": sc,
                "degree": de,
                "weight": self.weight({"layer": la, "scope": sc, "degree": de}),
            }
            for la in LAYERS
            for sc in SCOPES
            for de in DEGREES
        ]


def _tidy(weight: float) -> float:
    """Four significant digits: readable in records, and never rounded down to zero."""
    return float(f"{weight:.4g}")


def default_weights_path() -> Path:
    """The built-in table shipped with the package."""
    return package_file("nrr_stats.curator", "weights.toml")


def load_weights(path: str | Path | None = None) -> WeightTable:
    """The built-in table, with the entries of the TOML file at `path` (if any) laid over it."""
    base = _parse(_read(default_weights_path()), "built-in")
    if path is None:
        return base
    return _parse(_read(Path(path)), str(path), base)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NrrInputError("weight table not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise NrrInputError(f"cannot read weight table ({error})", path=str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise NrrInputError(f"weight table is not valid TOML ({error})", path=str(path)) from None


def _factor(value: Any, where: str, origin: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise NrrInputError(
            f"{where} = {value!r}: a weight must be a number in (0, 1]", path=origin
        )
    return float(value)


def _parse(data: dict[str, Any], origin: str, base: WeightTable | None = None) -> WeightTable:
    unknown = set(data) - {*_AXES, "bounds", "override"}
    if unknown:
        raise NrrInputError(f"unknown section [{sorted(unknown)[0]}] in weight table", path=origin)
    axes: dict[str, dict[str, float]] = {}
    for axis, vocabulary in _AXES.items():
        section = data.get(axis, {})
        if not isinstance(section, dict):
            raise NrrInputError(f"[{axis}] must be a table", path=origin)
        merged = dict(getattr(base, axis)) if base else {}
        for name, value in section.items():
            if name not in vocabulary:
                raise NrrInputError(
                    f"[{axis}] {name}: not one of {', '.join(vocabulary)}", path=origin
                )
            merged[name] = _factor(value, f"{axis}.{name}", origin)
        missing = [name for name in vocabulary if name not in merged]
        if missing:
            raise NrrInputError(f"[{axis}] has no weight for {', '.join(missing)}", path=origin)
        axes[axis] = merged
    bounds = data.get("bounds", {})
    if not isinstance(bounds, dict) or set(bounds) - {"floor"}:
        raise NrrInputError("[bounds] holds only floor", path=origin)
    floor = (
        _factor(bounds["floor"], "bounds.floor", origin)
        if "floor" in bounds
        else (base.floor if base else 0.05)
    )
    override = dict(base.override) if base else {}
    section = data.get("override", {})
    if not isinstance(section, dict):
        raise NrrInputError("[override] must be a table", path=origin)
    for name, value in section.items():
        parts = tuple(name.split("."))
        if len(parts) != 3 or any(p not in v for p, v in zip(parts, _AXES.values(), strict=True)):
            raise NrrInputError(
                f'[override] "{name}": write "layer.scope.degree" with known names', path=origin
            )
        override[parts] = _factor(value, f"override.{name}", origin)
    return WeightTable(axes["layer"], axes["scope"], axes["degree"], floor, override, origin)
