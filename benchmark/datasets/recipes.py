"""Dataset recipes: one small declarative TOML file per dataset in ``datasets/``.

A recipe says *what* a dataset is (source of actions, size, seed, environment); the build turns it
into a Minari dataset and writes the digests of what it produced back into the recipe's
``[digests]`` table, so anyone can check a rebuild or a download against the committed file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO_ROOT / "datasets"
SOURCE_KINDS = ("random", "policy", "replay", "concat")
# ``rewards_rounded`` is the rewards on a 2**-20 grid: the digest every CPU computes alike
# (``benchmark.datasets.store.REWARD_GRID`` says why ``rewards`` itself is not).
DIGEST_KEYS = (
    "actions",
    "rewards",
    "rewards_rounded",
    "terminations",
    "truncations",
    "state",
    "physics",
    "pixels",
)
_TOP_FIELDS = {
    "id": str,
    "env_id": str,
    "description": str,
    "author": str,
    "data_seed": int,
    "stochastic_actions": bool,
}


class RecipeError(ValueError):
    """A recipe file is missing, malformed, or names an unknown dataset."""


@dataclass(frozen=True)
class Source:
    """Where a dataset's actions come from."""

    kind: str  # one of SOURCE_KINDS
    checkpoint: Path | None = None  # policy: behaviour-policy checkpoint
    replay: Path | None = None  # replay: npz of reset seeds and actions
    datasets: tuple[str, ...] = ()  # concat: ids of the datasets to concatenate, in order


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file (see ``datasets/*.toml``)."""

    path: Path
    dataset_id: str
    env_id: str
    description: str
    author: str
    transitions: int | None  # None: everything the source has (the whole replay)
    data_seed: int
    stochastic_actions: bool
    source: Source
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def quality(self) -> str:
        """The dataset name without namespace and version, e.g. ``medium-replay``."""
        return self.dataset_id.rsplit("/", 1)[-1].rsplit("-v", 1)[0]


def _require(table: dict[str, Any], key: str, kind: type, where: str, path: Path) -> Any:
    if key not in table:
        raise RecipeError(f"{path}: missing field '{where}{key}'")
    value = table[key]
    # bool is an int subclass: check it explicitly so `data_seed = true` is rejected.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RecipeError(f"{path}: field '{where}{key}' must be {kind.__name__}, got {value!r}")
    return value


def _repo_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def _parse_source(table: Any, path: Path) -> Source:
    if not isinstance(table, dict):
        raise RecipeError(f"{path}: missing table '[source]'")
    kind = _require(table, "kind", str, "source.", path)
    if kind not in SOURCE_KINDS:
        raise RecipeError(f"{path}: 'source.kind' is {kind!r}, expected one of {SOURCE_KINDS}")
    if kind == "policy":
        return Source(
            kind, checkpoint=_repo_path(_require(table, "checkpoint", str, "source.", path))
        )
    if kind == "replay":
        return Source(kind, replay=_repo_path(_require(table, "replay", str, "source.", path)))
    if kind == "concat":
        ids = _require(table, "datasets", list, "source.", path)
        if not ids or not all(isinstance(i, str) for i in ids):
            raise RecipeError(f"{path}: 'source.datasets' must be a non-empty list of ids")
        return Source(kind, datasets=tuple(ids))
    return Source(kind)


def _parse_transitions(data: dict[str, Any], path: Path) -> int | None:
    if "transitions" not in data:
        raise RecipeError(f"{path}: missing field 'transitions'")
    value = data["transitions"]
    if value == "all":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RecipeError(f"{path}: field 'transitions' must be a positive int or \"all\"")
    return value


def load_recipe(path: Path) -> Recipe:
    """Parse one recipe file; a missing or unknown field raises :class:`RecipeError`."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RecipeError(f"{path}: cannot read recipe: {error}") from error
    known = {*_TOP_FIELDS, "transitions", "source", "digests"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    top = {key: _require(data, key, kind, "", path) for key, kind in _TOP_FIELDS.items()}
    digests = data.get("digests", {})
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise RecipeError(f"{path}: '[digests]' must map names to hex strings")
    return Recipe(
        path=Path(path),
        dataset_id=top["id"],
        env_id=top["env_id"],
        description=top["description"],
        author=top["author"],
        transitions=_parse_transitions(data, path),
        data_seed=top["data_seed"],
        stochastic_actions=top["stochastic_actions"],
        source=_parse_source(data.get("source"), path),
        digests=dict(digests),
    )


def load_recipes(directory: Path | None = None) -> dict[str, Recipe]:
    """All recipes in ``directory`` (default ``datasets/``), keyed by dataset id."""
    recipes: dict[str, Recipe] = {}
    for path in sorted(Path(directory or RECIPES_DIR).glob("*.toml")):
        recipe = load_recipe(path)
        if recipe.dataset_id in recipes:
            raise RecipeError(f"{path}: id {recipe.dataset_id} is also used by another recipe")
        recipes[recipe.dataset_id] = recipe
    return recipes


def known_dataset_ids() -> list[str]:
    """The ids of the committed recipes."""
    return list(load_recipes())


def get_recipe(dataset_id: str) -> Recipe:
    """The recipe of ``dataset_id``; an unknown id raises an error listing the valid ones."""
    recipes = load_recipes()
    if dataset_id not in recipes:
        raise RecipeError(
            f"unknown dataset id {dataset_id!r}; valid ids: {', '.join(recipes) or '(none)'}"
        )
    return recipes[dataset_id]


def write_digests(recipe: Recipe, digests: dict[str, str]) -> None:
    """Replace the recipe file's ``[digests]`` table (kept last in the file), atomically."""
    lines = recipe.path.read_text().splitlines()
    headers = [line.split("#", 1)[0].strip() for line in lines]
    if "[digests]" in headers:
        lines = lines[: headers.index("[digests]")]
    while lines and not lines[-1].strip():
        lines.pop()
    table = ["", "[digests]  # written by the build: sha256 of the stored arrays"]
    table += [f'{key} = "{digests[key]}"' for key in DIGEST_KEYS if key in digests]
    atomic_write_text(recipe.path, "\n".join(lines + table) + "\n")


def state_dataset_id(dataset_id: str) -> str:
    """Where the state-only build of a dataset lives: its namespace plus ``-state``, e.g.
    ``vorb/walker-walk/expert-v0`` -> ``vorb-state/walker-walk/expert-v0`` (already a state id:
    unchanged). The state track trains on these when the pixel dataset is not built."""
    namespace, _, rest = dataset_id.partition("/")
    if namespace.endswith("-state"):
        return dataset_id
    return f"{namespace}-state/{rest}"
