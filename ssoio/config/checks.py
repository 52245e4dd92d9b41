"""Checks that the configuration's users add to its loading.

Config knows the shape of every section, not the languages written in some values
(requirements, room patterns: the policy's). Those are checked by functions the caller
hands to loading, so that their mistakes are still reported with every other problem,
each at its key path:

* value checks run inside model validation, through pydantic's validation context, on
  the fields annotated with ``checked(kind)``; they raise ``ValueError``;
* cross-key checks run on the parsed model, with config's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationInfo

from ssoio.errors import Problem

if TYPE_CHECKING:
    from ssoio.config.model import Settings

__all__ = ["Checks", "checked"]

_CONTEXT_KEY = "ssoio.checks"


@dataclass(frozen=True, slots=True)
class Checks:
    """Value checks by kind (``"requirement"``, ``"room_pattern"``) and cross-key checks.

    :param values: kind -> a function raising ``ValueError`` (its message is reported).
    :param problems: functions returning a parsed model's problems, with key paths.
    """

    values: Mapping[str, Callable[[Any], object]] = field(default_factory=dict)
    problems: tuple[Callable[[Settings], list[Problem]], ...] = ()

    def context(self) -> dict[str, Any]:
        """The validation context that runs these checks (``Model.model_validate(...,
        context=checks.context())``)."""
        return {_CONTEXT_KEY: self}

    def __add__(self, other: Checks) -> Checks:
        return Checks({**self.values, **other.values}, (*self.problems, *other.problems))


def checked(kind: str) -> Callable[[Any, ValidationInfo], Any]:
    """A pydantic after-validator running the context's check of ``kind``, if any."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        checks = (info.context or {}).get(_CONTEXT_KEY)
        check = checks.values.get(kind) if isinstance(checks, Checks) else None
        if check is not None:
            check(value)
        return value

    return validate
