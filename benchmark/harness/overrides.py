"""``--set FIELD=VALUE``: change any field of a baseline's config or of the profile.

Values are parsed by the field's declared type. A config field applies to every selected baseline
whose config has it; a profile field to every cell. Both end up in each cell's recorded setup (the
config and profile written to ``meta.json``), so a cell folder made with other values refuses to
resume (the runner's "another configuration" error), and a report can always say which values
produced a number.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.harness import profiles
from benchmark.harness.precision import AUTO, takes_part, with_precision
from benchmark.harness.profiles import Profile

# Profile fields that name or shape the profile itself rather than its scale.
FIXED_PROFILE_FIELDS = frozenset({"name", "dataset_namespace", "datasets", "config_overrides"})
TRUE, FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


class OverrideError(ValueError):
    """A ``--set`` item names an unknown field or holds a value of the wrong type."""


@dataclass(frozen=True)
class Overrides:
    """Parsed ``--set`` items: (field, typed value) pairs for the profile and for configs."""

    profile: tuple[tuple[str, Any], ...] = ()
    config: tuple[tuple[str, Any], ...] = ()

    def apply_profile(self, profile: Profile) -> Profile:
        return dataclasses.replace(profile, **dict(self.profile)) if self.profile else profile

    def profile_named(self, name: str) -> Profile:
        """The registered profile ``name`` with the profile items applied."""

        return self.apply_profile(profiles.get(name))

    def config_for(self, spec: Any, profile: Profile, precision: str | None = None) -> Any:
        """A baseline's config as a cell runs it: defaults, the profile's scale overrides, the
        run's precision (``fp32``/``bf16``: the resolved ``auto``; None: the profile's, unless
        it is ``auto``), then the config items (one place: the runner, ``--plan`` and the probe
        all build it so; an explicit ``--set amp=...`` wins)."""
        config = profile.apply(spec.default_config())
        precision = precision or (None if profile.precision == AUTO else profile.precision)
        if precision is not None and takes_part(spec):
            config = with_precision(config, precision)
        return self.apply_config(config)

    def apply_config(self, config: Any) -> Any:
        """``config`` with the items whose field it has (others belong to other baselines)."""
        names = {field.name for field in dataclasses.fields(config)}
        changes = {name: value for name, value in self.config if name in names}
        return dataclasses.replace(config, **changes) if changes else config

    def to_json(self) -> dict[str, Any]:
        return {"profile": dict(self.profile), "config": dict(self.config)}


def settable_fields(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a dataclass, scalar fields only."""
    hints = typing.get_type_hints(cls)
    return {
        field.name: hints[field.name]
        for field in dataclasses.fields(cls)
        if _scalar_types(hints[field.name]) is not None
    }


def profile_fields() -> dict[str, Any]:
    fields = settable_fields(Profile)
    return {name: kind for name, kind in fields.items() if name not in FIXED_PROFILE_FIELDS}


def parse_overrides(items: Sequence[str], config_classes: Iterable[type]) -> Overrides:
    """``["updates=200000", "actor_lr=1e-3"]`` -> :class:`Overrides`; raises :class:`OverrideError`
    naming the bad item and the valid fields."""
    profile_kinds = profile_fields()
    config_kinds: dict[str, Any] = {}
    for cls in config_classes:
        config_kinds.update(settable_fields(cls))
    profile_items: dict[str, Any] = {}
    config_items: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise OverrideError(f"--set expects FIELD=VALUE, got {item!r}")
        if name in profile_kinds:
            profile_items[name] = parse_value(name, text, profile_kinds[name])
        elif name in config_kinds:
            config_items[name] = parse_value(name, text, config_kinds[name])
        else:
            raise OverrideError(
                f"--set: unknown field {name!r}; valid fields: profile: "
                f"{', '.join(sorted(profile_kinds))}; selected baselines' configs: "
                f"{', '.join(sorted(config_kinds))}"
            )
    return Overrides(tuple(sorted(profile_items.items())), tuple(sorted(config_items.items())))


def _scalar_types(kind: Any) -> tuple[type, ...] | None:
    """``int`` -> (int,); ``int | None`` -> (int, NoneType); containers -> None."""
    if kind in (bool, int, float, str):
        return (kind,)
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        parts = typing.get_args(kind)
        if all(part in (bool, int, float, str, type(None)) for part in parts):
            return parts
    return None


def parse_value(name: str, text: str, kind: Any) -> Any:
    """Parse ``text`` as the field's type (bool words, ints with ``_``, floats, ``none``)."""
    allowed = _scalar_types(kind) or ()
    stripped = text.strip()
    if type(None) in allowed and stripped.lower() == "none":
        return None
    for candidate in (kind for kind in allowed if kind is not type(None)):
        value = _parse_as(candidate, stripped)
        if value is not None:
            return value
    names = " or ".join(t.__name__ for t in allowed)
    raise OverrideError(f"--set {name}={text!r}: expected {names}")


def _parse_as(kind: type, text: str) -> Any:
    if kind is bool:
        lowered = text.lower()
        return True if lowered in TRUE else False if lowered in FALSE else None
    try:
        value = kind(text)
    except ValueError:
        return None
    if kind is float and value != value:  # NaN: never a meaningful setting
        return None
    return value
