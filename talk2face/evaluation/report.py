"""Writing the benchmark report: report.json, report.md (a table per task) and pictures.

`results` is a plain dict:

    {
      "meta": {"model": "runs/x/final", "data": "data/synface", ...},      # optional, free-form
      "age": {                                                              # one entry per task
        "metrics": {"model": {"MAE": 3.1, "CS@5": 0.8}, "mean age (baseline)": {"MAE": 19.0}},
        "age_pairs": {"true": [...], "predicted": [...]},                  # optional: scatter plot
      },
      "attributes": {
        "metrics": {...},
        "per_attribute": {"model": {"Smiling": 0.97, ...}, "majority": {...}},  # optional: bars
      },
    }

Rows of a task table are the keys of "metrics" in order (the model first, then baselines);
columns are every metric any row has. Pictures are drawn with PIL only (no plotting library).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from talk2face.data.images import to_pil

_BG, _FG, _GRID = (255, 255, 255), (30, 30, 30), (215, 215, 215)
_PALETTE = [(46, 110, 184), (230, 126, 34), (39, 174, 96), (192, 57, 43), (142, 68, 173)]


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def _as_pil_list(images: torch.Tensor | Sequence[Image.Image]) -> list[Image.Image]:
    if isinstance(images, torch.Tensor):
        return to_pil(images)  # (N, 3, H, W) in [-1, 1]
    return [im.convert("RGB") for im in images]


def image_grid(
    images: torch.Tensor | Sequence[Image.Image], rows: int, labels: Sequence[str] | None = None
) -> Image.Image:
    """Tile images into a grid, optionally with a short text label under each.

    Args:
        images: (N, 3, H, W) in [-1, 1], or N PIL images of one size.
        rows: number of rows; columns = ceil(N / rows).
        labels: N strings (long ones are cut to the tile width), or None.

    Returns:
        the grid as one RGB image.
    """
    tiles = _as_pil_list(images)
    if not tiles:
        raise ValueError("image_grid: no images")
    if labels is not None and len(labels) != len(tiles):
        raise ValueError(f"image_grid: {len(tiles)} images but {len(labels)} labels")
    rows = max(1, min(rows, len(tiles)))
    cols = math.ceil(len(tiles) / rows)
    w, h = tiles[0].size
    font = _font()
    line_h = 12 if labels is not None else 0
    label_lines = max((len(_wrap(label, w)) for label in labels), default=0) if labels is not None else 0
    cell_h = h + line_h * label_lines
    grid = Image.new("RGB", (cols * (w + 2) + 2, rows * (cell_h + 2) + 2), _BG)
    draw = ImageDraw.Draw(grid)
    for i, tile in enumerate(tiles):
        x, y = 2 + (i % cols) * (w + 2), 2 + (i // cols) * (cell_h + 2)
        grid.paste(tile.resize((w, h)), (x, y))
        if labels is not None:
            for k, line in enumerate(_wrap(labels[i], w)):
                draw.text((x + 1, y + h + k * line_h), line, fill=_FG, font=font)
    return grid


def _wrap(text: str, width_px: int, max_lines: int = 3) -> list[str]:
    """Split a label into lines of about width_px pixels (6 px per character of the default font)."""
    per_line = max(4, width_px // 6)
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return [ln[:per_line] for ln in lines[:max_lines]]


def age_scatter(true: Sequence[float], predicted: Sequence[float], size: int = 420, title: str = "age") -> Image.Image:
    """Scatter plot of predicted against true age, with the diagonal y = x.

    Args:
        true, predicted: ages in years, same length.
        size: side of the square picture in pixels.
        title: text at the top.

    Returns:
        RGB image.
    """
    t, p = np.asarray(true, float), np.asarray(predicted, float)
    top = max(10.0, float(np.ceil(max(t.max(initial=0), p.max(initial=0)) / 10) * 10))
    margin = 40
    span = size - 2 * margin
    image = Image.new("RGB", (size, size), _BG)
    draw = ImageDraw.Draw(image)
    font = _font()

    def xy(a: float, b: float) -> tuple[float, float]:
        return margin + a / top * span, size - margin - b / top * span

    for tick in range(0, int(top) + 1, max(10, int(top) // 10 // 10 * 10 or 10)):
        x0, y0 = xy(tick, tick)
        draw.line([(x0, margin), (x0, size - margin)], fill=_GRID)
        draw.line([(margin, y0), (size - margin, y0)], fill=_GRID)
        draw.text((x0 - 6, size - margin + 4), str(tick), fill=_FG, font=font)
        draw.text((margin - 22, y0 - 5), str(tick), fill=_FG, font=font)
    draw.line([xy(0, 0), xy(top, top)], fill=(150, 150, 150), width=1)
    for a, b in zip(t, p):
        x, y = xy(a, b)
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=_PALETTE[0])
    draw.text((margin, 12), f"{title}: predicted (y) vs true (x), n={len(t)}", fill=_FG, font=font)
    return image


def attribute_bars(per_attribute: Mapping[str, Mapping[str, float]], title: str = "accuracy per attribute") -> Image.Image:
    """Horizontal bars of per-attribute accuracy, one colour per row (model, baselines).

    Args:
        per_attribute: row name -> {attribute -> value in [0, 1]}.
        title: text at the top.

    Returns:
        RGB image.
    """
    rows = list(per_attribute)
    names = sorted({a for values in per_attribute.values() for a in values})
    bar_h, gap, label_w, plot_w = 7, 6, 150, 320
    group_h = bar_h * len(rows) + gap
    height = 40 + group_h * len(names) + 16 * len(rows) + 10
    image = Image.new("RGB", (label_w + plot_w + 60, height), _BG)
    draw = ImageDraw.Draw(image)
    font = _font()
    draw.text((10, 8), title, fill=_FG, font=font)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + tick * plot_w
        draw.line([(x, 28), (x, 32 + group_h * len(names))], fill=_GRID)
        draw.text((x - 8, 32 + group_h * len(names)), f"{tick:g}", fill=_FG, font=font)
    for i, name in enumerate(names):
        y = 32 + i * group_h
        draw.text((10, y), name, fill=_FG, font=font)
        for r, row in enumerate(rows):
            value = per_attribute[row].get(name)
            if value is not None:
                colour = _PALETTE[r % len(_PALETTE)]
                draw.rectangle([label_w, y + r * bar_h, label_w + value * plot_w, y + (r + 1) * bar_h - 1], fill=colour)
    legend_y = 48 + group_h * len(names)
    for r, row in enumerate(rows):
        draw.rectangle([10, legend_y + 16 * r, 20, legend_y + 16 * r + 9], fill=_PALETTE[r % len(_PALETTE)])
        draw.text((26, legend_y + 16 * r - 1), row, fill=_FG, font=font)
    return image


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    return value


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def markdown_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table: one row per entry of `metrics`, one column per metric name."""
    columns: list[str] = []
    for values in metrics.values():
        columns += [c for c in values if c not in columns]
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row, values in metrics.items():
        lines.append(f"| {row} | " + " | ".join(_cell(values.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_report(
    results: Mapping[str, Any],
    out_dir: str | Path,
    images: Mapping[str, Image.Image | torch.Tensor | Sequence[Image.Image]] | None = None,
) -> dict[str, Path]:
    """Write report.json, report.md and the pictures into out_dir.

    Args:
        results: see the module docstring; "meta" is optional, every other key is a task.
        out_dir: created if needed.
        images: picture name -> a ready image (e.g. from `image_grid`), or images to tile
            ((N, 3, H, W) in [-1, 1], or PIL images), saved as `<name>.png` and shown in report.md.

    Returns:
        file kind/name -> path of every file written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    meta = results.get("meta", {})
    lines = ["# talk2face evaluation report", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    for task, body in results.items():
        if task == "meta":
            continue
        lines += ["", f"## {task}", ""]
        if body.get("error"):
            lines.append(f"Not run: {body['error']}")
            continue
        if body.get("metrics"):
            lines.append(markdown_table(body["metrics"]))
        if body.get("age_pairs"):
            path = out / f"{task}_age_scatter.png"
            age_scatter(body["age_pairs"]["true"], body["age_pairs"]["predicted"], title=task).save(path)
            written[path.stem] = path
            lines += ["", f"![{task}: predicted vs true age]({path.name})"]
        if body.get("per_attribute"):
            path = out / f"{task}_attribute_accuracy.png"
            attribute_bars(body["per_attribute"], title=f"{task}: accuracy per attribute").save(path)
            written[path.stem] = path
            lines += ["", f"![{task}: accuracy per attribute]({path.name})"]
            lines += ["", "<details><summary>per-attribute table</summary>", ""]
            by_attribute: dict[str, dict[str, float]] = {}
            for row, values in body["per_attribute"].items():
                for name, value in values.items():
                    by_attribute.setdefault(name, {})[row] = value
            lines += [markdown_table(dict(sorted(by_attribute.items()))), "", "</details>"]
    if images:
        lines += ["", "## samples", ""]
        for name, picture in images.items():
            if not isinstance(picture, Image.Image):
                tiles = _as_pil_list(picture)
                picture = image_grid(tiles, rows=max(1, round(math.sqrt(len(tiles)))))
            path = out / f"{name}.png"
            picture.save(path)
            written[name] = path
            lines += [f"### {name}", "", f"![{name}]({path.name})", ""]
    report_json = out / "report.json"
    report_json.write_text(json.dumps(_jsonable(results), indent=2))
    report_md = out / "report.md"
    report_md.write_text("\n".join(lines).rstrip() + "\n")
    written["report.json"], written["report.md"] = report_json, report_md
    return written
