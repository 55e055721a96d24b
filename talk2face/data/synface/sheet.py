"""A contact sheet: faces in a grid with short label text under each (for eyes, README, demo)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from talk2face.data.record import FaceRecord

# short forms that fit under a 128-px face; attributes not listed are left out of the label
SHORT: dict[str, str] = {
    "Smiling": "smile", "Mouth_Slightly_Open": "open", "Eyeglasses": "glasses", "Wearing_Hat": "hat",
    "Bald": "bald", "Bangs": "bangs", "Black_Hair": "black", "Blond_Hair": "blond",
    "Brown_Hair": "brown", "Gray_Hair": "gray", "Wavy_Hair": "wavy", "Mustache": "mustache",
    "Goatee": "goatee", "Wearing_Lipstick": "lipstick", "Pale_Skin": "pale", "Rosy_Cheeks": "rosy",
    "Bushy_Eyebrows": "bushy", "Arched_Eyebrows": "arched", "Big_Nose": "nose", "Chubby": "chubby",
    "Wearing_Earrings": "earring", "Wearing_Necklace": "necklace", "Wearing_Necktie": "tie",
    "Narrow_Eyes": "narrow", "Big_Lips": "lips",
}


def label_lines(record: FaceRecord, width: int = 22) -> list[str]:
    """'M 34 beard' then the short attribute names, wrapped to `width` characters."""
    a = record.attributes or {}
    head = f"{'M' if a.get('Male') else 'F'} {record.age if record.age is not None else '?'}"
    if a and not a.get("No_Beard", True):
        head += " beard" if not a.get("Goatee") else ""
    if record.edit is not None:
        head += f" edit:{SHORT.get(record.edit.attribute, record.edit.attribute)}"
    words = [head] + [SHORT[k] for k in SHORT if a.get(k)]
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + [line]


def contact_sheet(records: Sequence[FaceRecord], root: str | Path, path: str | Path,
                  columns: int = 8, cell: int = 128) -> Image.Image:
    """Write the faces of `records` (image paths relative to `root`) with labels to `path`.

    Args:
        records: up to a few hundred records; 64 make an 8x8 sheet.
        root: the folder the record image paths are relative to.
        path: the PNG to write.
        columns: faces per row.
        cell: side of one face in the sheet, in pixels.
    Returns:
        the sheet image (also saved to `path`).
    """
    font = ImageFont.load_default()
    text_h = 4 * 11
    rows = (len(records) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell + text_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, record in enumerate(records):
        x, y = (i % columns) * cell, (i // columns) * (cell + text_h)
        with Image.open(Path(root) / record.image) as im:
            sheet.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.BICUBIC), (x, y))
        for j, line in enumerate(label_lines(record)[:4]):
            draw.text((x + 2, y + cell + 1 + 11 * j), line, fill=(0, 0, 0), font=font)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return sheet
