"""Defense specs (``dpsgd:eps=8``): the parsed ``DefenseSpec`` and the check of a defense's
parameters against the constraints it declares (``defenses.base.Defense._constraints``).

A spec names each parameter as the defense does, except the privacy budget: ``eps`` in a
spec (and so in cache folders, results and reports), ``epsilon`` once parsed
(``SPELLINGS``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from mi_defense.config.params import Constraint
from mi_defense.errors import UserError

SPELLINGS = {"epsilon": "eps"}                      # parameter -> its spelling in a spec
_PARAMETERS = {v: k for k, v in SPELLINGS.items()}  # spelling -> parameter


def spelled(name: str) -> str:
    """``name`` as a spec writes it (``epsilon``: ``eps``)."""
    return SPELLINGS.get(name, name)


@dataclass(frozen=True)
class DefenseSpec:
    """A defense name and its parameters, parsed from ``name:key=value,key=value``.
    ``params`` holds the parameters' names (``epsilon``); ``str``, ``key`` and
    ``spelled_params`` write them as a spec does (``eps``)."""

    name: str
    params: Tuple[Tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "DefenseSpec":
        name, _, rest = str(text).partition(":")
        name = name.strip()
        params = []
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise UserError(f"defense '{text}': parameter '{item}' must be key=value, e.g. dpsgd:eps=8")
            if key in SPELLINGS:
                raise UserError(f"defense '{name}' has no parameter(s) {key}; "
                                f"a spec writes {spelled(key)}, e.g. dpsgd:eps=8")
            params.append((_PARAMETERS.get(key, key), _coerce(value.strip())))
        return cls(name, tuple(params))

    @property
    def kwargs(self) -> Dict[str, Any]:
        return dict(self.params)

    @property
    def spelled_params(self) -> Dict[str, Any]:
        """The parameters as the spec writes them (``{"eps": 8}``), as ``results.json`` records them."""
        return {spelled(k): v for k, v in self.params}

    @property
    def claims_dp(self) -> bool:
        """True when the spec sets a privacy budget (``eps``): the defense claims differential privacy."""
        return "epsilon" in self.kwargs

    @property
    def key(self) -> str:
        """Stable label, used as the folder name of its cache and in results."""
        return self.name + "".join(f"_{spelled(k)}={v}" for k, v in self.params)

    def __str__(self) -> str:
        return self.name + (":" + ",".join(f"{spelled(k)}={v}" for k, v in self.params) if self.params else "")


def _coerce(v: str):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def check_spec_params(defense: str, params: Mapping[str, Any], declared: Mapping[str, Optional[Constraint]],
                      required: Tuple[str, ...] = (), example: str = "") -> Dict[str, Any]:
    """``params`` of the defense named ``defense``, each converted to the type its declared
    constraint holds; an unknown or missing parameter, or a value its constraint refuses,
    is a one-line error in the spec's own terms (``eps=-1 is not a finite positive
    number``). A parameter declared with None is the defense's to check."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        hint = "".join(f" (in Python: {_PARAMETERS[k]}=)" for k in unknown if _PARAMETERS.get(k) in declared)
        raise UserError(f"defense '{defense}' has no parameter(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(map(spelled, declared)) or 'none'}{hint}")
    missing = [k for k in required if k not in params]
    if missing:
        raise UserError(f"defense '{defense}' needs {', '.join(map(spelled, missing))}, e.g. --defense {example}")
    checked = {}
    for k, value in params.items():
        c = declared[k]
        checked[k] = value if c is None else c.coerce(value)
        if c is not None and not c.accepts(checked[k]):
            raise UserError(f"defense '{defense}': {spelled(k)}={value} is not {c.description}"
                            + (f", e.g. {example}" if example else ""))
    return checked
