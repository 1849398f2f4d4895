"""A markdown dataset card with a PNG strip of sample frames next to it."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import atomic_write_text
from benchmark.datasets.rerender import variant_record
from benchmark.datasets.store import (
    build_record,
    dataset_dir,
    folder_bytes,
    is_built,
    load_or_explain,
)

STRIP_FRAMES = 8


def _frame_strip(dataset: Any, frames: int, size: int | None = None) -> np.ndarray:
    """Evenly spaced frames of the first episode, side by side (H, frames * W, 3); ``size``
    resizes them (nearest neighbour) so that strips of two resolutions line up."""
    pixels = next(iter(dataset.iterate_episodes())).observations["pixels"]
    picks = np.linspace(0, len(pixels) - 1, num=min(frames, len(pixels))).round().astype(int)
    chosen = list(pixels[picks])
    if size is not None and size != chosen[0].shape[0]:
        from PIL import Image

        chosen = [
            np.asarray(Image.fromarray(f).resize((size, size), Image.NEAREST)) for f in chosen
        ]
    return np.concatenate(chosen, axis=1)


def _source_of(dataset: Any) -> Any | None:
    """The dataset a variant was re-rendered from, if it is a variant and its source is here."""

    source_id = variant_record(dataset).get("source")
    return load_or_explain(source_id) if source_id and is_built(source_id) else None


def frames_image(dataset: Any, source: Any | None) -> np.ndarray:
    """The card's strip: a variant's frames under its source's (the same steps), else one row."""
    if source is None:
        return _frame_strip(dataset, STRIP_FRAMES)
    top = _frame_strip(source, STRIP_FRAMES)
    return np.concatenate([top, _frame_strip(dataset, STRIP_FRAMES, size=top.shape[0])], axis=0)


def _variant_lines(dataset: Any, source: Any | None) -> str:
    record = variant_record(dataset)
    if not record:
        return "Sample frames (first episode, evenly spaced):"
    drawn = ", ".join(f"{k} {v}" for k, v in record.get("appearance", {}).items()) or "none"
    where = "top row: the source's frames, bottom row: this variant's, at the same steps"
    if source is None:
        where = f"this variant's frames (source {record['source']} is not built here)"
    return (
        f"Visual variant `{record['variant']}` (seed {record['seed']}) of `{record['source']}`: "
        f"{record['description']}; evaluation env `{record['env_id']}`; drawn: {drawn}. "
        "Actions, rewards, states and physics are the source's (digest-checked).\n\n"
        f"Sample frames (first episode, evenly spaced; {where}):"
    )


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, path)


def _returns(dataset: Any) -> np.ndarray:
    return np.array([float(np.sum(e.rewards)) for e in dataset.iterate_episodes()])


def card_markdown(dataset: Any, png_name: str, source: Any | None = None) -> str:
    import minari

    metadata = dataset.storage.metadata
    returns, record = _returns(dataset), build_record(dataset)
    normalised = float(np.mean(minari.get_normalized_score(dataset, returns)))
    size = folder_bytes(dataset_dir(dataset.id))
    stats = record.get("stats", {})
    rows = [
        ("episodes", f"{dataset.total_episodes:,}"),
        ("transitions", f"{dataset.total_steps:,}"),
        (
            "frames stored",
            f"{dataset.total_steps + dataset.total_episodes:,} (each once, lossless)",
        ),
        ("bytes on disk", f"{size:,} ({size / max(dataset.total_steps, 1):,.0f} per transition)"),
        (
            "storage",
            f"{metadata.get('data_format')}, jpeg_encoding={metadata.get('jpeg_encoding')}",
        ),
        ("return mean ± std", f"{returns.mean():.1f} ± {returns.std():.1f}"),
        ("return min / max", f"{returns.min():.1f} / {returns.max():.1f}"),
        (
            "reference scores (min / max)",
            f"{metadata.get('ref_min_score')} / {metadata.get('ref_max_score')}",
        ),
        ("normalised score of the mean", f"{normalised:.3f}"),
        ("data seed", str(record.get("data_seed", "?"))),
        ("build seconds", str(stats.get("build_seconds", "?"))),
        *(
            [("re-render seconds", str(stats["rerender_seconds"]))]
            if "rerender_seconds" in stats
            else []
        ),
        ("author", ", ".join(sorted(metadata.get("author", [])))),
        ("code", str(metadata.get("code_permalink"))),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"# {dataset.id}\n\n{metadata.get('description', '')}\n\n| | |\n|---|---|\n{table}\n\n"
        f"{_variant_lines(dataset, source)}\n\n![frames]({png_name})\n\n"
        f"Requirements: `{' '.join(metadata.get('requirements', []))}`\n"
    )


def write_card(dataset_id: str, out_dir: Path | None = None) -> Path:
    """Write ``<out_dir>/<name>.md`` and ``<name>-frames.png``; returns the markdown path."""
    dataset = load_or_explain(dataset_id)
    out_dir = Path(out_dir) if out_dir is not None else dataset_dir(dataset_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = dataset_id.replace("/", "__")
    png = out_dir / f"{name}-frames.png"
    source = _source_of(dataset)
    _write_png(png, frames_image(dataset, source))
    markdown = out_dir / f"{name}.md"
    atomic_write_text(markdown, card_markdown(dataset, png.name, source))
    return markdown
