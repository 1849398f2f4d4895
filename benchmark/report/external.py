"""External rows in the report: plugins' results and contributed submissions.

Every cell's ``meta.json`` records where its baseline came from (``plugin``:
:func:`benchmark.harness.plugins.provenance`); the leaderboard marks the rows of external baselines and
lists their distribution, version, commit and config hash.

Submissions are results that arrive as a pull request, in the layout ``python -m benchmark.export_results``
packs (tables and metadata, no checkpoints)::

    results/submissions/<name>/runs/<profile>/<algo>/<dataset key>/seed-<n>/
        evals.csv  metrics.csv  meta.json  done

``python -m benchmark.report --results results/reference --submissions results/submissions``
puts them beside the baselines. A submission is refused, naming the field, when its protocol
(profile, updates, evaluation interval and episodes, datasets, observation kind) differs from
the reference's, or when it holds a baseline the reference also has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.harness.results import Selection, select_cells
from benchmark.report.protocol import ProtocolMismatch, protocol_mismatches

BUILT_IN = "built-in"


@dataclass(frozen=True)
class Origin:
    """Where one baseline's rows come from: ``built-in``, ``external`` or ``submission <name>``,
    and the provenance records of its cells (distinct ones)."""

    label: str
    records: tuple[dict[str, Any], ...] = ()

    @property
    def external(self) -> bool:
        return self.label != BUILT_IN


def find_submissions(paths: Sequence[str | Path]) -> dict[Path, str]:
    """Submission folder -> its name: each path is a submission (it holds ``runs/``) or a folder
    of them (``results/submissions``, whose sub-folders holding ``runs/`` are submissions)."""
    found: dict[Path, str] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            raise ValueError(f"no such submissions folder: {path}")
        if (path / "runs").is_dir():
            found[path] = path.name
            continue
        found |= {sub: sub.name for sub in sorted(path.iterdir()) if (sub / "runs").is_dir()}
    return found


def check_submissions(reference: Selection, submissions: dict[Path, str], profile: str) -> None:
    """Refuse (ValueError naming the submission and the field) a submission that ran another
    protocol than the reference's cells of ``profile``, or that holds a reference baseline."""

    theirs = [reference.meta[f] for f in reference.folders_of(profile) if f in reference.meta]
    reference_algos = {m["cell"]["algo"] for m in theirs}
    for root, name in submissions.items():
        selection = select_cells(root)
        mine = [selection.meta[f] for f in selection.folders_of(profile) if f in selection.meta]
        if not mine:
            raise ValueError(f"submission {name} ({root}) holds no results of profile {profile!r}")
        clash = sorted({m["cell"]["algo"] for m in mine} & reference_algos)
        if clash:
            raise ValueError(
                f"submission {name} ({root}) holds {', '.join(clash)}, which the reference has "
                "too: a submission's baselines need names of their own"
            )
        # The profile's own scale, not per-baseline counts: a submission runs the profile as is.
        problems = protocol_mismatches(
            mine, theirs, (f"submission {name}", "the reference"), per_cell=False
        )
        if problems:
            raise ProtocolMismatch(f"submission {name} ({root}) refused: " + "; ".join(problems))


def origins(selection: Selection, profile: str, submissions: dict[Path, str]) -> dict[str, Origin]:
    """Each baseline of ``profile`` -> where its rows come from (metadata without a ``plugin``
    record, written before provenance was recorded, counts as built-in)."""
    by_algo: dict[str, list[dict[str, Any]]] = {}
    labels: dict[str, str] = {}
    for folder in selection.folders_of(profile):
        meta = selection.meta.get(folder, {})
        algo = folder.parts[-3]
        record = meta.get("plugin") or {"origin": BUILT_IN, "external": False}
        by_algo.setdefault(algo, [])
        if record not in by_algo[algo]:
            by_algo[algo].append(record)
        submitted = [n for root, n in submissions.items() if folder.is_relative_to(root)]
        if submitted:
            labels[algo] = f"submission {submitted[0]}"
        elif record.get("external"):
            labels.setdefault(algo, "external")
    return {
        algo: Origin(labels.get(algo, BUILT_IN), tuple(records))
        for algo, records in by_algo.items()
    }


def display_names(found: dict[str, Origin]) -> dict[str, str]:
    """``tiny-bc`` -> ``tiny-bc (external)``: how tables and figures name external rows."""
    return {algo: f"{algo} ({o.label})" if o.external else algo for algo, o in found.items()}


def relabel(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    if frame.empty or "algo" not in frame:
        return frame
    return frame.assign(algo=frame["algo"].map(lambda algo: names.get(algo, algo)))


def provenance_section(found: dict[str, Origin]) -> str:
    """Markdown: each external baseline's distribution, version, commit and config hash."""
    external = {algo: o for algo, o in found.items() if o.external}
    if not external:
        return ""
    header = "| baseline | from | distribution | version | commit | config sha256 |"
    lines = ["", "## External baselines", "", header, "|---|---|---|---|---|---|"]
    for algo, origin in external.items():
        for record in origin.records:
            git = record.get("git") or {}
            commit = str(git.get("commit") or "-")[:10]
            if git.get("dirty"):
                commit += " (dirty)"
            cells = [algo, origin.label, record.get("distribution") or "-"]
            cells += [record.get("version") or "-", commit]
            cells.append(str(record.get("config_sha256") or "-")[:12])
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Rows marked external come from outside this repository (an installed plugin, "
        "`--algos module:Class`, a script's registration, or a submission); each cell's "
        "`meta.json` holds the full record (`plugin`).",
    ]
    return "\n".join(lines) + "\n"
