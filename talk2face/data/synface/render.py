"""Draw a FaceParams as an aligned, front-facing face crop with PIL.

All geometry is in unit coordinates (0..1 of the canvas, y down) and scaled at the end, so the
picture is the same at every size. The face is drawn at SUPERSAMPLE x the requested size and
reduced with a box filter: that antialiases every edge at little cost.

How age shows (so that a model can read it, not only guess it):
- children (age < 18): a bigger, rounder head, eyes lower in the face and larger, a smaller nose,
  mouth and chin, a thinner neck and narrower shoulders (the proportions change smoothly to 18);
- adults: forehead lines, nasolabial folds, crow's feet, under-eye bags and jowls appear from
  about 30 and grow darker and more numerous with age; lips thin; non-grey hair greys slightly
  from 40 (on top of the Gray_Hair attribute, which is grey-to-white hair).
Each attribute is drawn large enough to survive a 64x64 crop (glasses frames, hat, earrings,
lipstick, beard shapes are a few pixels thick at 64x64).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from talk2face.data.synface.params import FaceParams

MIN_SIZE, MAX_SIZE = 32, 256
RGB = tuple[int, int, int]

_HAIR_RGB: dict[str, RGB] = {
    "Black_Hair": (28, 24, 24),
    "Brown_Hair": (105, 62, 32),
    "Blond_Hair": (226, 190, 105),
    "Gray_Hair": (185, 185, 185),
}
_EYE_RGB: dict[str, RGB] = {
    "brown": (110, 65, 30), "dark brown": (60, 35, 20), "blue": (60, 120, 200),
    "green": (60, 140, 80), "grey": (120, 135, 145), "hazel": (140, 110, 50),
}
_LIPSTICKS: tuple[RGB, ...] = ((200, 20, 40), (170, 10, 60), (225, 40, 90), (150, 20, 35))
_SKIN_LIGHT, _SKIN_MID, _SKIN_DARK = (np.array(c, float) for c in
                                      ((242, 208, 184), (205, 150, 110), (92, 58, 38)))
_PALE: RGB = (250, 236, 230)


def _rgb(c: np.ndarray) -> RGB:
    """A float colour array -> an (r, g, b) tuple of ints in 0..255."""
    return tuple(int(v) for v in np.clip(c, 0, 255).round())  # type: ignore[return-value]


def _mix(a: RGB | np.ndarray, b: RGB | np.ndarray, t: float) -> RGB:
    """Linear blend of two colours, t=0 -> a, t=1 -> b."""
    return _rgb(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)


def _shade(c: RGB, f: float) -> RGB:
    """Multiply brightness by f (f < 1 darkens)."""
    return tuple(int(min(255, max(0, v * f))) for v in c)  # type: ignore[return-value]


def skin_color(params: FaceParams) -> RGB:
    """The face's skin colour: identity tone and warmth, Pale_Skin, slight dulling with age."""
    ident = params.identity
    if params.has("Pale_Skin"):
        return _PALE
    t = ident.skin_tone
    base = _SKIN_LIGHT + (_SKIN_MID - _SKIN_LIGHT) * min(t * 2, 1) + \
        (_SKIN_DARK - _SKIN_MID) * max(t * 2 - 1, 0)
    base = base + np.array([8, 0, -8]) * ident.skin_warmth
    grey = base.mean()
    base = base + (grey - base) * 0.25 * np.clip((params.age - 40) / 50, 0, 1)  # dulls with age
    return _rgb(base)


def hair_color(params: FaceParams) -> RGB | None:
    """The hair (and beard) colour, or None when Bald."""
    a = params.attributes
    name = next((c for c in _HAIR_RGB if a[c]), None)
    if name is None:
        return None
    shade = params.identity.hair_shade
    if name == "Gray_Hair":  # silver to white, always exactly grey (R == G == B)
        v = int(185 + 35 * shade)
        return (v, v, v)
    base = _shade(_HAIR_RGB[name], 1 + 0.18 * shade) if name != "Black_Hair" else \
        _mix(_HAIR_RGB[name], (60, 45, 40), (shade + 1) / 2 * 0.6)
    greying = 0.3 * float(np.clip((params.age - 40) / 50, 0, 1))  # salt and pepper after 40
    return _mix(base, (165, 165, 165), greying)


def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int,
                 wobble: float = 0.0, waves: int = 0) -> list[tuple[float, float]]:
    """Points on an ellipse arc from angle a0 to a1 (radians, y down); optional wavy edge."""
    pts = []
    for t in np.linspace(a0, a1, n):
        r = 1 + wobble * math.sin(waves * t)
        pts.append((cx + rx * r * math.cos(t), cy + ry * r * math.sin(t)))
    return pts


class _Canvas:
    """ImageDraw in unit coordinates: every call takes 0..1 positions and unit line widths."""

    def __init__(self, image: Image.Image) -> None:
        self.s = image.size[0]
        self.draw = ImageDraw.Draw(image)

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        s = self.s
        return [(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s]

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill=None, outline=None,
                width: float = 0.0) -> None:
        self.draw.ellipse(self.box(cx, cy, rx, ry), fill=fill, outline=outline,
                          width=max(1, round(width * self.s)) if outline else 0)

    def polygon(self, pts: list[tuple[float, float]], fill: RGB) -> None:
        self.draw.polygon([(x * self.s, y * self.s) for x, y in pts], fill=fill)

    def line(self, pts: list[tuple[float, float]], fill: RGB, width: float) -> None:
        self.draw.line([(x * self.s, y * self.s) for x, y in pts], fill=fill,
                       width=max(1, round(width * self.s)), joint="curve")

    def arc(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float,
            fill: RGB, width: float) -> None:
        self.draw.arc(self.box(cx, cy, rx, ry), start, end, fill=fill,
                      width=max(1, round(width * self.s)))


def _supersample(size: int) -> int:
    """Render scale: at least 2x, and at least 128 px, so small faces are antialiased too."""
    return max(2, math.ceil(128 / size))


def _background(params: FaceParams, side: int) -> Image.Image:
    top, bottom = (np.array(c, np.float32) for c in params.identity.background)
    t = np.linspace(0, 1, side, dtype=np.float32)[:, None]  # (S, 1)
    rows = (top * (1 - t) + bottom * t).astype(np.uint8)  # (S, 3)
    return Image.fromarray(np.repeat(rows[:, None, :], side, axis=1), "RGB")  # (S, S, 3)


def render_face(params: FaceParams, size: int = 64) -> Image.Image:
    """Render one face.

    Args:
        params: labels and identity (see `sample_params`).
        size: output side in pixels, 32..256.
    Returns:
        an RGB PIL image of size x size, the face centred like an aligned crop.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    ss = _supersample(size)
    image = _background(params, size * ss)
    c = _Canvas(image)
    a, ident, age = params.attributes, params.identity, params.age

    child = float(np.clip((18 - age) / 17, 0, 1))  # 1 at age 1, 0 from 18
    old = float(np.clip((age - 28) / 55, 0, 1))  # 0 until 28, 1 at 83
    chubby = 1.0 if a["Chubby"] else 0.0
    male = a["Male"]

    # head geometry: a child's head is rounder and its features sit lower and are bigger
    # (aligned crops fix the eye distance, so a child's head also looks bigger in the frame)
    cx, cy = 0.5, 0.49
    hw = 0.27 * ident.face_width * (1 + 0.12 * child) * (1 + 0.16 * chubby) * (1.04 if male else 1.0)
    hh = 0.33 * (1 + 0.03 * child)
    jaw = ident.jaw * (1 - child) * (1 - 0.6 * chubby)
    eye_y = cy + hh * (0.04 + 0.3 * child)
    eye_dx = hw * (0.42 - 0.04 * child)
    eye_rx = hw * 0.21 * (1 + 0.45 * child)
    eye_ry = eye_rx * (0.3 if a["Narrow_Eyes"] else 0.62 + 0.1 * child)
    brow_y = eye_y - eye_ry - hh * (0.1 + 0.03 * child)
    mouth_y = cy + hh * (0.6 + 0.08 * child)
    nose_y = (eye_y + mouth_y) / 2 + hh * 0.06
    skin = skin_color(params)
    skin_dark = _shade(skin, 0.78)
    line_c = _shade(skin, 0.6)
    hair = hair_color(params)
    brow_c = hair if hair is not None else (70, 50, 40)
    if a["Gray_Hair"] or (hair is None and age > 60):
        brow_c = (150, 150, 150)
    else:
        brow_c = _shade(brow_c, 0.8)

    # long hair behind the head and shoulders
    style = ident.hair_style
    wavy = 0.035 if a["Wavy_Hair"] else 0.0
    if hair is not None and style in ("long", "bob", "medium"):
        drop = {"long": 0.95, "bob": 0.62, "medium": 0.5}[style]
        back_w = hw * (1.3 if style != "medium" else 1.15)
        pts = _ellipse_pts(cx, cy - hh * 0.1, back_w, hh * 1.08, math.pi, 2 * math.pi, 24, wavy, 14)
        side_pts = [(cx + back_w * (1 + wavy * math.sin(k * 2.3)), cy - hh * 0.1 + hh * drop * k / 6)
                    for k in range(7)]
        left_pts = [(2 * cx - x, y) for x, y in reversed(side_pts)]
        c.polygon(left_pts + pts + side_pts, fill=_shade(hair, 0.85))

    # neck and shoulders (clothes)
    neck_w = hw * (0.42 + (0.1 if male else 0) - 0.08 * child + 0.1 * chubby)
    shoulder_w = 0.44 * (1 - 0.3 * child) * (1.08 if male else 1.0)
    c.polygon([(cx - neck_w, cy + hh * 0.6), (cx + neck_w, cy + hh * 0.6),
               (cx + neck_w, 0.97), (cx - neck_w, 0.97)], fill=skin_dark)
    shirt = ident.shirt
    c.ellipse(cx, 1.08, shoulder_w, 0.2, fill=shirt)
    collar_y = 1.08 - 0.2
    c.polygon([(cx - neck_w * 1.05, collar_y + 0.01), (cx + neck_w * 1.05, collar_y + 0.01),
               (cx, collar_y + 0.07)], fill=skin_dark)  # V of the collar
    if a["Wearing_Necktie"]:
        tie = _mix(ident.accessory, (160, 20, 30), 0.5)
        c.polygon([(cx - 0.025, collar_y + 0.02), (cx + 0.025, collar_y + 0.02),
                   (cx + 0.035, 1.0), (cx - 0.035, 1.0)], fill=tie)
        c.polygon([(cx - 0.03, collar_y), (cx + 0.03, collar_y), (cx + 0.02, collar_y + 0.035),
                   (cx - 0.02, collar_y + 0.035)], fill=_shade(tie, 0.75))
        # white shirt collar around the knot makes the tie stand out on any shirt colour
        c.polygon([(cx - neck_w * 1.2, collar_y - 0.01), (cx - 0.03, collar_y + 0.04),
                   (cx - 0.05, collar_y + 0.06)], fill=(240, 240, 240))
        c.polygon([(cx + neck_w * 1.2, collar_y - 0.01), (cx + 0.03, collar_y + 0.04),
                   (cx + 0.05, collar_y + 0.06)], fill=(240, 240, 240))
    if a["Wearing_Necklace"]:
        c.arc(cx, collar_y - 0.04, neck_w * 1.1, 0.085, 15, 165, (240, 205, 60), 0.024)
        c.ellipse(cx, collar_y + 0.05, 0.024, 0.024, fill=(250, 215, 80))

    # ears, earrings
    ear_y = eye_y + hh * 0.12
    for side in (-1, 1):
        ex = cx + side * hw * 0.98
        c.ellipse(ex, ear_y, hw * 0.16, hh * 0.2, fill=skin_dark)
        if a["Wearing_Earrings"]:
            # gold or turquoise: saturated, so they stand out on any skin and background
            ring = (255, 200, 20) if ident.lip_tint < 0.5 else (20, 200, 210)
            c.ellipse(ex + side * 0.01, ear_y + hh * 0.32, 0.042, 0.042, outline=ring, width=0.024)

    # face outline: an ellipse whose lower half narrows by `jaw`, plus jowls with age
    pts = []
    for t in np.linspace(0, 2 * math.pi, 48, endpoint=False):
        s, co = math.sin(t), math.cos(t)
        # men: a squarer jaw; women: a more tapered chin
        taper = 0.22 * jaw + 0.05 if male else 0.3 * jaw + 0.15
        lower = max(s, 0)
        # chubby cheeks bulge out over the lower face; jowls sag with age
        k = 1 - taper * lower ** 2 + (0.05 * old + 0.12 * chubby) * lower * (1 - lower)
        pts.append((cx + hw * co * k, cy + hh * s))
    c.polygon(pts, fill=skin)
    if chubby:  # double chin and round cheek pads
        c.arc(cx, cy + hh * 0.93, hw * 0.4, hh * 0.1, 15, 165, line_c, 0.014)
        for side in (-1, 1):
            c.arc(cx + side * hw * 0.55, mouth_y - hh * 0.1, hw * 0.25, hh * 0.22,
                  20 if side > 0 else 100, 80 if side > 0 else 160, _shade(skin, 0.85), 0.012)

    # age lines: each kind appears at its own age and darkens steadily after it, so that the
    # darkness of the lines keeps telling the age apart between the ages where new ones appear
    wl = 0.006 + 0.008 * old
    wrinkle = _mix(skin, line_c, float(np.clip(0.15 + (age - 22) / 45, 0, 1)))
    if age >= 24:  # nasolabial folds: nose wing to mouth corner
        for side in (-1, 1):
            c.line([(cx + side * hw * 0.2, nose_y - hh * 0.02), (cx + side * hw * 0.34, mouth_y - hh * 0.04),
                    (cx + side * hw * 0.36, mouth_y + hh * 0.1)], wrinkle, wl)
    if age >= 34:  # forehead lines, one more every ~12 years
        for i in range(min(4, 1 + (age - 34) // 12)):
            y = brow_y - hh * (0.12 + 0.08 * i)
            c.arc(cx, y + hh * 0.1, hw * 0.45, hh * 0.1, 200, 340, wrinkle, wl)
    if age >= 44:  # crow's feet and under-eye bags
        for side in (-1, 1):
            x0 = cx + side * (eye_dx + eye_rx * 1.15)
            for dy in (-0.015, 0.0, 0.015):
                c.line([(x0, eye_y + dy * 0.5), (x0 + side * 0.03, eye_y + dy * 1.8)], wrinkle, wl)
            c.arc(cx + side * eye_dx, eye_y + eye_ry * 1.1, eye_rx, eye_ry * 0.8, 20, 160, wrinkle, wl)
    if age >= 58:  # jowl lines
        for side in (-1, 1):
            c.line([(cx + side * hw * 0.5, mouth_y + hh * 0.05), (cx + side * hw * 0.42, mouth_y + hh * 0.3)],
                   wrinkle, wl)

    if a["Rosy_Cheeks"]:
        for side in (-1, 1):
            c.ellipse(cx + side * hw * 0.55, eye_y + hh * 0.33, hw * 0.23, hh * 0.13,
                      fill=_mix(skin, (240, 60, 90), 0.7))

    # facial hair (drawn before mouth and nose so those stay on top)
    beard_c = hair if hair is not None else _mix((70, 50, 40), (160, 160, 160), old)
    if params.full_beard:
        # the lower face outline (right -> chin -> left) closed by a line across the cheeks
        top = mouth_y - hh * 0.28
        lower = [(x, y) for x, y in pts[1:24] if y > top]
        c.polygon(lower + [(lower[-1][0], top), (cx, top + hh * 0.05), (lower[0][0], top)], fill=beard_c)
    if a["Goatee"]:
        c.ellipse(cx, mouth_y + hh * 0.24, hw * 0.26, hh * 0.2, fill=beard_c)
    # nose: a child's is small; Big_Nose is wider and longer
    big = 2.0 if a["Big_Nose"] else 1.0
    nose_w = hw * 0.14 * big * (1 - 0.3 * child)
    nose_l = hh * 0.25 * (1.4 if a["Big_Nose"] else 1.0) * (1 - 0.4 * child)
    # a shaded bridge down to a rounded tip, small nostrils under it
    c.polygon([(cx - nose_w * 0.25, nose_y - nose_l), (cx + nose_w * 0.1, nose_y - nose_l),
               (cx + nose_w * 0.55, nose_y - nose_w * 0.2), (cx - nose_w * 0.1, nose_y - nose_w * 0.2)],
              fill=_shade(skin, 0.9))
    c.ellipse(cx, nose_y, nose_w, nose_w * 0.55, fill=_shade(skin, 0.86))
    c.arc(cx, nose_y, nose_w, nose_w * 0.55, 10, 170, _shade(skin, 0.65), 0.008)  # underside
    for side in (-1, 1):
        c.ellipse(cx + side * nose_w * 0.42, nose_y + nose_w * 0.3, nose_w * 0.16, nose_w * 0.09,
                  fill=_shade(skin, 0.55))
    if a["Mustache"]:
        mw = hw * 0.52
        c.polygon([(cx - mw, mouth_y + hh * 0.05), (cx - mw * 0.45, mouth_y - hh * 0.2),
                   (cx + mw * 0.45, mouth_y - hh * 0.2), (cx + mw, mouth_y + hh * 0.05),
                   (cx, mouth_y - hh * 0.04)], fill=beard_c)

    _draw_mouth(c, params, cx, mouth_y, hw, hh, child, old, skin)
    _draw_eyes(c, params, cx, eye_y, eye_dx, eye_rx, eye_ry, line_c)

    if hair is not None:
        _draw_hair(c, params, cx, cy, hw, hh, brow_y, hair, wavy)
    else:  # the shine on a bald head
        c.ellipse(cx - hw * 0.25, cy - hh * 0.78, hw * 0.25, hh * 0.08, fill=_mix(skin, (255, 255, 255), 0.35))
    _draw_brows(c, params, cx, eye_dx, eye_rx, brow_y, brow_c, hw)
    if a["Wearing_Hat"]:
        _draw_hat(c, params, cx, cy, hw, hh)
    if a["Eyeglasses"]:
        frame = _shade(ident.accessory, 0.5)
        gw = 0.022
        for side in (-1, 1):
            ex = cx + side * eye_dx
            c.ellipse(ex, eye_y, eye_rx * 1.55, max(eye_rx * 1.15, eye_ry * 1.5), outline=frame, width=gw)
            c.line([(ex + side * eye_rx * 1.55, eye_y - 0.01), (cx + side * hw * 0.98, ear_y - hh * 0.1)],
                   frame, gw * 0.8)
        c.line([(cx - eye_dx + eye_rx * 1.5, eye_y - 0.01), (cx + eye_dx - eye_rx * 1.5, eye_y - 0.01)],
               frame, gw * 0.8)
    return image.reduce(ss) if ss > 1 else image


def _draw_mouth(c: _Canvas, params: FaceParams, cx: float, my: float, hw: float, hh: float,
                child: float, old: float, skin: RGB) -> None:
    """Lips (lipstick or natural), a smile that curves up and shows teeth, an open mouth."""
    a = params.attributes
    mw = hw * (0.5 if a["Smiling"] else 0.34) * (1 - 0.25 * child)
    lip_h = hh * (0.1 if a["Big_Lips"] else 0.045) * (1 - 0.4 * old)
    if a["Wearing_Lipstick"]:
        lip = _LIPSTICKS[int(params.identity.lip_tint * len(_LIPSTICKS)) % len(_LIPSTICKS)]
    else:
        lip = _mix(skin, (170, 80, 80), 0.4)
    dark, teeth = (60, 15, 20), (250, 250, 245)
    open_ = a["Mouth_Slightly_Open"]
    if a["Smiling"]:
        # a wide upward crescent showing teeth (clenched when closed, parted when open), with
        # creases at the corners: big enough to read at 64x64
        depth, lift = hh * (0.2 if open_ else 0.13), hh * 0.07
        upper = [(cx + mw * x, my - lift * x * x + hh * 0.01 - lip_h * 0.5 * (1 - x * x))
                 for x in np.linspace(-1, 1, 11)]
        lower = [(cx + mw * x, my + depth * (1 - x * x) - lift * x * x + lip_h * 0.6)
                 for x in np.linspace(1, -1, 11)]
        c.polygon(upper + lower, fill=lip)
        inner_top = [(cx + mw * 0.85 * x, my - lift * 0.7 * x * x + hh * 0.012) for x in np.linspace(-1, 1, 9)]
        inner_bot = [(cx + mw * 0.85 * x, my + (depth - lip_h * 0.2) * (1 - x * x) - lift * 0.7 * x * x)
                     for x in np.linspace(1, -1, 9)]
        c.polygon(inner_top + inner_bot, fill=dark if open_ else teeth)
        if open_:  # upper teeth over a dark open mouth
            c.polygon(inner_top + [(cx + mw * 0.6, my + depth * 0.35), (cx - mw * 0.6, my + depth * 0.35)],
                      fill=teeth)
        else:  # the line where the teeth meet
            c.line([(cx + mw * 0.8 * x, my + depth * 0.4 * (1 - x * x) - lift * 0.5 * x * x + hh * 0.01)
                    for x in np.linspace(-1, 1, 7)], _shade(teeth, 0.7), 0.006)
        crease = _shade(skin, 0.7)
        for side in (-1, 1):
            x0 = cx + side * mw * 1.05
            c.line([(x0, my - lift * 1.4), (x0 + side * mw * 0.12, my - lift * 0.4),
                    (x0, my + hh * 0.05)], crease, 0.008)
    else:
        gap = hh * 0.1 if open_ else 0.0
        c.ellipse(cx, my - lip_h * 0.4, mw, lip_h, fill=lip)  # upper lip
        c.ellipse(cx, my + lip_h * 0.6 + gap, mw * 0.85, lip_h * 1.1, fill=_shade(lip, 0.95))
        if open_:
            c.ellipse(cx, my + gap * 0.45, mw * 0.75, gap * 0.6 + lip_h * 0.2, fill=dark)
            c.ellipse(cx, my + gap * 0.1, mw * 0.5, gap * 0.22, fill=teeth)
        else:
            c.line([(cx - mw * 0.9, my + lip_h * 0.15), (cx + mw * 0.9, my + lip_h * 0.15)],
                   _shade(lip, 0.55), 0.006)


def _draw_eyes(c: _Canvas, params: FaceParams, cx: float, ey: float, dx: float, rx: float,
               ry: float, line_c: RGB) -> None:
    """Eyes: white, iris in the identity's colour, pupil, lid (with lashes for women)."""
    a = params.attributes
    iris = _EYE_RGB[params.identity.eye_color]
    for side in (-1, 1):
        ex = cx + side * dx
        c.ellipse(ex, ey, rx, ry, fill=(248, 248, 248))
        ir = min(rx * 0.55, ry * 1.0)
        c.ellipse(ex, ey, ir, min(ir, ry), fill=iris)
        c.ellipse(ex, ey, ir * 0.45, min(ir, ry) * 0.45, fill=(10, 10, 10))
        if a["Male"]:
            c.arc(ex, ey, rx, ry, 190, 350, line_c, 0.008)  # upper lid
        else:  # lashes: a heavier dark lid line with a flick at the outer corner
            c.arc(ex, ey, rx, ry, 185, 355, (35, 25, 25), 0.016)
            c.line([(ex + side * rx * 0.95, ey - ry * 0.2), (ex + side * rx * 1.3, ey - ry * 0.7)],
                   (35, 25, 25), 0.012)


def _draw_brows(c: _Canvas, params: FaceParams, cx: float, dx: float, rx: float, brow_y: float,
                brow_c: RGB, hw: float) -> None:
    """Eyebrows: arched (peak two thirds out) or flat; bushy = thick and dark. Drawn over bangs
    so that the eyebrow attributes stay visible."""
    a = params.attributes
    bushy = a["Bushy_Eyebrows"]
    w = hw * (0.095 if bushy else 0.04)
    arch = 0.065 if a["Arched_Eyebrows"] else 0.0
    for side in (-1, 1):
        ex = cx + side * dx
        inner, outer = ex - side * rx * 1.1, ex + side * rx * 1.25
        peak = ex + side * rx * 0.45
        pts = [(inner, brow_y - arch * 0.3), (peak, brow_y - arch), (outer, brow_y + 0.01 + arch * 0.2)]
        c.line(pts, _shade(brow_c, 0.55) if bushy else brow_c, w)


def _draw_hair(c: _Canvas, params: FaceParams, cx: float, cy: float, hw: float, hh: float,
               brow_y: float, hair: RGB, wavy: float) -> None:
    """The hair over the top of the head: a cap between an outer arc and the hairline."""
    a, ident = params.attributes, params.identity
    style = ident.hair_style
    volume = {"crop": 1.04, "side": 1.08, "medium": 1.12, "bob": 1.14, "long": 1.12, "bun": 1.06}[style]
    outer = _ellipse_pts(cx, cy, hw * volume, hh * (volume + 0.02), math.pi * 0.95, math.pi * 2.05,
                         28, wavy, 18)
    # the hairline: a dome over the forehead; bangs bring it down to the brows with a jagged fringe
    top_y = brow_y - 0.02 if a["Bangs"] else cy - hh * 0.62
    base_y = cy - hh * 0.05
    inner = _ellipse_pts(cx + ident.part * hw * 0.08, base_y, hw * 0.93, base_y - top_y,
                         math.pi * 2.0, math.pi * 1.0, 21)
    if a["Bangs"]:
        inner = [(x, y + (0.022 if i % 2 else 0.0)) for i, (x, y) in enumerate(inner)]
    c.polygon(outer + inner, fill=hair)
    if style == "bun":
        c.ellipse(cx, cy - hh * 1.1, hw * 0.38, hh * 0.25, fill=hair)
    # strands: darker curves, wavy ones undulate
    strand = _shade(hair, 0.72)
    for i in range(5):
        x0 = cx + hw * (-0.6 + 0.3 * i)
        n = 16
        pts = [(x0 + (wavy * 1.2 * math.sin(k * 0.95 + i) if wavy else 0.02 * ident.part * k / n),
                cy - hh * (1.0 - 0.03 * k)) for k in range(n)]
        c.line(pts, strand, 0.008)


def _draw_hat(c: _Canvas, params: FaceParams, cx: float, cy: float, hw: float, hh: float) -> None:
    """A cap, beanie or brimmed hat in the identity's accessory colour family."""
    ident = params.identity
    color = _mix(ident.accessory, (200, 40, 40), 0.25)
    band = _shade(color, 0.6)
    top = cy - hh * 1.2
    bottom = cy - hh * 0.62
    if ident.hat_style == "beanie":
        c.ellipse(cx, bottom, hw * 1.1, bottom - top, fill=color)
        c.polygon([(cx - hw * 1.12, bottom), (cx + hw * 1.12, bottom), (cx + hw * 1.1, bottom + 0.06),
                   (cx - hw * 1.1, bottom + 0.06)], fill=band)
        c.ellipse(cx, top, 0.03, 0.03, fill=band)
    elif ident.hat_style == "cap":
        c.ellipse(cx, bottom, hw * 1.08, bottom - top, fill=color)
        c.polygon([(cx - hw * 1.1, bottom), (cx + hw * 1.1, bottom), (cx + hw * 1.1, bottom + 0.03),
                   (cx - hw * 1.1, bottom + 0.03)], fill=color)
        c.ellipse(cx, bottom + 0.035, hw * 0.95, 0.035, fill=band)  # visor seen from the front
    else:  # brimmed
        c.ellipse(cx, bottom, hw * 1.7, 0.045, fill=band)
        c.polygon([(cx - hw * 1.0, bottom), (cx - hw * 0.92, top + 0.02), (cx + hw * 0.92, top + 0.02),
                   (cx + hw * 1.0, bottom)], fill=color)
        c.polygon([(cx - hw * 1.0, bottom - 0.015), (cx + hw * 1.0, bottom - 0.015),
                   (cx + hw * 0.99, bottom - 0.05), (cx - hw * 0.99, bottom - 0.05)], fill=band)
