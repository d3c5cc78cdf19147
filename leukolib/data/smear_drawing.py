"""Drawing a synthetic smear: stains, cells and light (for :mod:`leukolib.data.synthetic`).

:func:`draw_smear` makes every random choice first, then draws the layers from
back to front in optical density (Beer-Lambert): tinted plasma, overlapping red
cells, platelets, the white cells (cytoplasm, then the nucleus with its
chromatin, nucleoli and, for L3, vacuoles), and finally turns the density into
an 8-bit photograph (lamp, illumination ramp, slight blur, sensor noise). The
class-specific look of a blast is the table :data:`_SHAPES`. See the module
documentation of :mod:`leukolib.data.synthetic` for what is drawn and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from leukolib.data.sample import Sample

if TYPE_CHECKING:
    from leukolib.data.synthetic import SmearConfig

__all__ = ["SmearLayers", "draw_smear"]

_REFERENCE_SIZE = 256  # the geometry below is in pixels of a 256 x 256 image

# Absorbance (optical density, natural log) of each stain, RGB order.
_YELLOW_OD = np.array([0.015, 0.045, 0.20], np.float32)  # yellowish plasma
_PINK_OD = np.array([0.015, 0.12, 0.075], np.float32)  # pinkish plasma
_RBC_OD = np.array([0.09, 0.37, 0.35], np.float32)  # pale pink red cell
_RBC_OVERLAP = 0.4  # darkening where red cells overlap, relative to the Beer-Lambert sum
_PLATELET_OD = np.array([0.50, 0.95, 0.35], np.float32)  # purple
_NUCLEUS_OD = np.array([0.92, 1.55, 0.55], np.float32)  # purple / violet
_CYTOPLASM_OD = (  # by label: pale blue-lilac (L1, L2), deep blue (L3)
    np.array([0.34, 0.26, 0.11], np.float32),
    np.array([0.36, 0.31, 0.12], np.float32),
    np.array([0.89, 0.60, 0.27], np.float32),
)


@dataclass(frozen=True)
class _CellShape:
    """Class-specific look of a blast; lengths in pixels at 256 x 256, ranges inclusive."""

    nucleus_radius: tuple[float, float]  # semi-major axis of the nucleus
    aspect: tuple[float, float]  # minor / major axis of the nucleus
    irregularity: float  # amplitude of the low harmonics of the nucleus outline
    rim: tuple[float, float]  # cytoplasm thickness around the nucleus
    chromatin: float  # contrast of the chromatin texture
    chromatin_cells: int  # coarseness of the chromatin texture (more: finer)
    notch_probability: float = 0.0  # chance of a cleft / indentation
    notch_depth: tuple[float, float] = (0.0, 0.0)  # relative to the radius
    nucleoli: tuple[int, int] = (0, 0)
    nucleolus_radius: tuple[float, float] = (0.0, 0.0)
    vacuoles: tuple[int, int] = (0, 0)
    vacuole_radius: tuple[float, float] = (0.0, 0.0)


# fmt: off
_SHAPES = (  # by label
    _CellShape(  # L1: small, scant cytoplasm, round homogeneous nucleus
        nucleus_radius=(14.0, 18.0), aspect=(0.90, 1.0), irregularity=0.02, rim=(2.5, 5.0),
        chromatin=0.10, chromatin_cells=7,
    ),
    _CellShape(  # L2: larger, variable, cleft nucleus with nucleoli, more cytoplasm
        nucleus_radius=(17.0, 27.0), aspect=(0.72, 0.95), irregularity=0.07, rim=(6.0, 14.0),
        chromatin=0.26, chromatin_cells=6, notch_probability=0.8, notch_depth=(0.2, 0.45),
        nucleoli=(1, 2), nucleolus_radius=(2.5, 4.0),
    ),
    _CellShape(  # L3: large, round / oval nucleus, nucleoli, vacuolated blue cytoplasm
        nucleus_radius=(24.5, 30.0), aspect=(0.82, 1.0), irregularity=0.02, rim=(8.0, 13.0),
        chromatin=0.20, chromatin_cells=12, nucleoli=(2, 4), nucleolus_radius=(2.5, 4.0),
        vacuoles=(5, 12), vacuole_radius=(1.4, 3.0),
    ),
)
# fmt: on


@dataclass(frozen=True)
class SmearLayers:
    """A synthetic smear with the layers behind it, for tests and teaching.

    Attributes
    ----------
    sample : Sample
        The image and its nucleus / cytoplasm ground truth.
    rbc : ndarray of bool, shape (H, W)
        Visible red-cell pixels (red cells are hidden under white cells).
    platelets : ndarray of bool, shape (H, W)
        Platelet pixels.
    rbc_count : int
        Number of red cells drawn (some may be clipped or partly hidden).
    wbc_count : int
        Number of white cells (1 or 2).
    nuisance : float
        The nuisance value ``u`` in ``[0, 1]`` that set the red-cell density
        and the background tint (see :class:`SmearConfig` ``shortcut``).
    """

    sample: Sample
    rbc: np.ndarray
    platelets: np.ndarray
    rbc_count: int
    wbc_count: int
    nuisance: float




def draw_smear(
    label: int, rng: np.random.Generator, cfg: SmearConfig, sample_id: str
) -> SmearLayers:
    """Draw the whole smear: random choices first, then the layers from back to front."""
    h, w = cfg.shape
    scale = min(h, w) / _REFERENCE_SIZE  # pixels per reference pixel
    area_ratio = h * w / min(h, w) ** 2  # field area relative to a square field

    # The nuisance value behind the shortcut sets the red-cell count and the tint.
    u = _nuisance(cfg.shortcut, label, rng.random())
    lo, hi = cfg.rbc_count
    n_rbc = math.floor((lo + u * (hi - lo)) * area_ratio + 0.5)

    # Staining and illumination, independent of the class.
    tint_od = rng.uniform(*cfg.tint_strength) * ((1.0 - u) * _YELLOW_OD + u * _PINK_OD)
    stain = (1.0 + rng.uniform(-1.0, 1.0) * cfg.stain_jitter) * (
        1.0 + rng.uniform(-0.5, 0.5, 3) * cfg.stain_jitter
    )
    stain = stain.astype(np.float32)
    lamp = 255.0 * rng.uniform(*cfg.brightness) * (1.0 - rng.uniform(0.0, cfg.color_cast, 3))
    gradient = rng.uniform(0.0, cfg.illumination_gradient)
    angle = rng.uniform(0.0, 2 * math.pi)
    blur_sigma = rng.uniform(*cfg.blur_sigma)

    # Optical density, channel-planar (3, H, W) so that a per-channel colour times a
    # (H, W) map broadcasts over the fast axis. Plasma first, with a faint mottling.
    mottling = 1.0 + 0.3 * _field(rng, (4, 4), (h, w))
    od = tint_od[:, None, None] * mottling

    # White cells are placed first, so that red cells and platelets can avoid them.
    shape = _SHAPES[label]
    wbcs = [_place_wbc(rng, shape, scale, h, w, None)]
    if rng.random() < cfg.two_wbc_probability:
        second = _place_wbc(rng, shape, scale, h, w, wbcs[0])
        if second is not None:
            wbcs.append(second)

    density, rbc_drawn = _rbc_density(rng, n_rbc, scale, wbcs, h, w)
    # Overlaps darken less than the sum of the thicknesses (cells deform and
    # spread), which keeps stacked red cells from looking like purple nuclei.
    thickness = np.minimum(density, 1.0) + _RBC_OVERLAP * np.maximum(density - 1.0, 0.0)
    od += (_RBC_OD * stain)[:, None, None] * thickness

    n_plt = int(rng.integers(cfg.platelet_count[0], cfg.platelet_count[1] + 1))
    n_plt = math.floor(n_plt * area_ratio + 0.5)
    platelets = _draw_platelets(rng, od, n_plt, scale, wbcs, _PLATELET_OD * stain)

    # White cells on top of everything: they hide the red cells under them.
    nucleus = np.zeros((h, w), bool)
    cell = np.zeros((h, w), bool)
    for wbc in wbcs:
        _paint_wbc(rng, od, nucleus, cell, wbc, label, scale, tint_od, stain)

    image = _photograph(od, lamp, gradient, angle, blur_sigma)
    if cfg.noise_sigma > 0:  # sensor noise: image + sigma * noise, rounded and saturated
        noise = _sensor_noise(rng, h, w)
        image = cv2.addWeighted(image, 1.0, noise, float(cfg.noise_sigma), 0.0, dtype=cv2.CV_8U)

    sample = Sample(
        image=image, nucleus=nucleus, cytoplasm=cell & ~nucleus, label=label, id=sample_id
    )
    return SmearLayers(
        sample=sample,
        rbc=(density > 0) & ~cell,
        platelets=platelets,
        rbc_count=rbc_drawn,
        wbc_count=len(wbcs),
        nuisance=u,
    )


def _nuisance(shortcut: float, label: int, v: float) -> float:
    """Nuisance value ``u`` in [0, 1] from the class and a uniform draw ``v`` (see the module)."""
    s = abs(shortcut)
    cue = label / 2 if shortcut >= 0 else (2 - label) / 2  # a negative shortcut reverses the cue
    return min(max(s * cue + (1.0 - s) * v, 0.0), 1.0)


def _photograph(
    od: np.ndarray, lamp: np.ndarray, gradient: float, angle: float, blur_sigma: float
) -> np.ndarray:
    """8-bit RGB image (H, W, 3) of the light ``lamp`` (3,) transmitted through ``od``."""
    _, h, w = od.shape
    # Illumination: a linear ramp in direction ``angle``, +-gradient/2 across the field.
    side = max(h, w)
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * (gradient * math.sin(angle) / side)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * (gradient * math.cos(angle) / side)
    ramp = 1.0 + y[:, None] + x[None, :]
    # Beer-Lambert: light = lamp * ramp * exp(-od), rounded and saturated to 8 bits.
    planes = [
        cv2.multiply(np.exp(-od[c]), ramp, scale=float(lamp[c]), dtype=cv2.CV_8U) for c in range(3)
    ]
    image = cv2.merge(planes)
    if blur_sigma > 0.05:  # slight optical blur (8-bit Gaussian blur is bit-exact in OpenCV)
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma, borderType=cv2.BORDER_REFLECT)
    return image


@dataclass(frozen=True)
class _Wbc:
    """Where a white cell lies: centre, bounding radius and outlines ((N, 2) x, y points)."""

    cx: float
    cy: float
    radius: float
    cell: np.ndarray
    nucleus: np.ndarray


def _place_wbc(
    rng: np.random.Generator, shape: _CellShape, scale: float, h: int, w: int, other: _Wbc | None
) -> _Wbc | None:
    """Draw the outlines of a white cell clear of ``other``, or None when it does not fit."""
    rn = rng.uniform(*shape.nucleus_radius) * scale
    aspect = rng.uniform(*shape.aspect)
    rim = rng.uniform(*shape.rim) * scale
    rotation = rng.uniform(0.0, math.pi)
    notch = None
    if rng.random() < shape.notch_probability:  # (angle, relative depth, angular width)
        angle, depth = rng.uniform(0.0, 2 * math.pi), rng.uniform(*shape.notch_depth)
        notch = (angle, depth, rng.uniform(0.25, 0.45))
    # The cell is the nucleus ellipse grown by the rim, slightly perturbed; the
    # nucleus sits a little off centre.
    ca = rn + rim
    cb = rn * aspect + rim * rng.uniform(0.85, 1.15)
    radius = max(ca, cb) * 1.06 + 1.0
    offset = rng.uniform(0.0, 0.35) * rim
    offset_angle = rng.uniform(0.0, 2 * math.pi)
    # 40 candidate centres inside the field; keep the first clear of the other cell.
    margin = radius + 2.0 * scale + 1.0
    xs = margin + rng.uniform(0.0, 1.0, 40) * max(w - 2 * margin, 0.0)
    ys = margin + rng.uniform(0.0, 1.0, 40) * max(h - 2 * margin, 0.0)
    k = 0
    if other is not None:
        free = np.hypot(xs - other.cx, ys - other.cy) > radius + other.radius + 4.0 * scale
        if not free.any():
            return None
        k = int(np.argmax(free))
    cx, cy = float(xs[k]), float(ys[k])
    cell = _outline(rng, cx, cy, ca, cb, rotation, 0.025)
    nx = cx + offset * math.cos(offset_angle)
    ny = cy + offset * math.sin(offset_angle)
    nucleus = _outline(rng, nx, ny, rn, rn * aspect, rotation, shape.irregularity, notch)
    return _Wbc(cx, cy, radius, cell, nucleus)


def _outline(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    a: float,
    b: float,
    rotation: float,
    irregularity: float,
    notch: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """(72, 2) points of an ellipse with a wavy radius and an optional Gaussian notch."""
    theta = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
    rho = np.ones_like(theta)
    if irregularity > 0:  # harmonics 2, 3, 4 with decreasing amplitudes
        amplitudes = irregularity * rng.uniform(0.3, 1.0, 3) / np.array([1.0, 1.5, 2.0])
        phases = rng.uniform(0.0, 2 * math.pi, 3)
        for k in range(3):
            rho += amplitudes[k] * np.cos((k + 2) * theta + phases[k])
    if notch is not None:
        at, depth, width = notch
        d = np.mod(theta - at + math.pi, 2 * math.pi) - math.pi  # angle from the notch
        rho *= 1.0 - depth * np.exp(-0.5 * (d / width) ** 2)
    x, y = a * rho * np.cos(theta), b * rho * np.sin(theta)
    c, s = math.cos(rotation), math.sin(rotation)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _rbc_density(
    rng: np.random.Generator, n: int, scale: float, wbcs: list[_Wbc], h: int, w: int
) -> tuple[np.ndarray, int]:
    """Summed stain thickness (H, W) of up to ``n`` red cells, and how many were drawn."""
    r = rng.uniform(10.5, 14.0, n) * scale
    # Centres anywhere, clipped at the borders, but not deep under a white cell:
    # 8 candidates per cell, keep the first free one (or drop the cell).
    cx = (w + r)[:, None] * rng.uniform(0.0, 1.0, (n, 8)) - 0.5 * r[:, None]
    cy = (h + r)[:, None] * rng.uniform(0.0, 1.0, (n, 8)) - 0.5 * r[:, None]
    free = np.ones(cx.shape, bool)
    for c in wbcs:
        free &= np.hypot(cx - c.cx, cy - c.cy) > c.radius + 0.4 * r[:, None]
    first = np.argmax(free, axis=1)
    keep = free[np.arange(n), first]
    cx, cy = cx[np.arange(n), first][keep], cy[np.arange(n), first][keep]
    elongation = rng.uniform(0.85, 1.0, n)
    rotation = rng.uniform(0.0, math.pi, n)
    pallor = rng.uniform(0.25, 0.5, n)
    strength = rng.uniform(0.85, 1.1, n)
    # The parameters of the cells kept, as (cells, 1, 1) columns to broadcast over boxes.
    r, elongation, rotation, pallor, strength = np.array(
        [r, elongation, rotation, pallor, strength], np.float32
    )[:, keep, None, None]

    # Every cell is drawn in a square box of side 2 * half + 1 around its centre
    # pixel, all cells at once: arrays of shape (cells, box, box).
    half = math.ceil(14.0 * scale) + 2
    ix, iy = np.floor(cx).astype(int), np.floor(cy).astype(int)
    offsets = np.arange(-half, half + 1, dtype=np.float32)
    dx = ((ix - cx).astype(np.float32)[:, None] + offsets)[:, None, :]  # from the centre
    dy = ((iy - cy).astype(np.float32)[:, None] + offsets)[:, :, None]
    cos, sin = np.cos(rotation), np.sin(rotation)
    along = (dx * cos + dy * sin) / r
    across = (dy * cos - dx * sin) / (r * elongation)
    rho = np.sqrt(along * along + across * across)  # 0 at the centre, 1 on the edge
    # Biconcave disc: a pale centre rising smoothly to a full rim, then a soft edge of 1.3 px.
    t = np.clip((rho - 0.15) / 0.55, 0.0, 1.0)
    profile = strength * (pallor + (1.0 - pallor) * t * t * (3.0 - 2.0 * t))
    profile *= np.clip((1.0 - rho) * r / 1.3, 0.0, 1.0)

    # Add the boxes onto a canvas padded so that boxes over the border fit.
    pad = 2 * half + 2
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
    for k in range(len(profile)):
        y0, x0 = iy[k] - half + pad, ix[k] - half + pad
        canvas[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1] += profile[k]
    return canvas[pad : pad + h, pad : pad + w], len(profile)


def _draw_platelets(
    rng: np.random.Generator,
    od: np.ndarray,
    n: int,
    scale: float,
    wbcs: list[_Wbc],
    platelet_od: np.ndarray,
) -> np.ndarray:
    """Add up to ``n`` platelets to ``od``, away from the white cells and each other.

    A platelet is 1-3 overlapping small discs (under 150 px at 256 x 256) with a
    granular texture. Returns the platelet mask.
    """
    _, h, w = od.shape
    mask = np.zeros((h, w), bool)
    centres: list[tuple[float, float]] = []
    half = math.ceil(6 * scale) + 2  # half side of the box that holds one platelet
    for _ in range(n):
        xs = half + rng.uniform(0.0, 1.0, 20) * (w - 2 * half - 1)
        ys = half + rng.uniform(0.0, 1.0, 20) * (h - 2 * half - 1)
        free = np.ones(20, bool)
        for c in wbcs:
            free &= np.hypot(xs - c.cx, ys - c.cy) > c.radius + 8 * scale
        for px, py in centres:
            free &= np.hypot(xs - px, ys - py) > 14 * scale
        if not free.any():
            continue
        k = int(np.argmax(free))
        centres.append((xs[k], ys[k]))
        x0, y0 = int(xs[k]) - half, int(ys[k]) - half
        x1, y1 = x0 + 2 * half + 1, y0 + 2 * half + 1
        blob = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            ox, oy = rng.uniform(-1.6, 1.6, 2) * scale
            radius = rng.uniform(2.0, 3.2) * scale
            _circle(blob, xs[k] + ox - x0, ys[k] + oy - y0, radius, antialiased=False)
        texture = 1.0 + 0.25 * _field(rng, (3, 3), blob.shape)
        od[:, y0:y1, x0:x1] += platelet_od[:, None, None] * (texture * blob * rng.uniform(0.8, 1.1))
        mask[y0:y1, x0:x1] |= blob > 0
    return mask


def _paint_wbc(
    rng: np.random.Generator,
    od: np.ndarray,
    nucleus_mask: np.ndarray,
    cell_mask: np.ndarray,
    wbc: _Wbc,
    label: int,
    scale: float,
    tint_od: np.ndarray,
    stain: np.ndarray,
) -> None:
    """Paint one white cell over ``od`` and add it to the masks.

    Outlines are drawn anti-aliased: colours are blended by coverage, and a
    pixel belongs to a mask when the shape covers at least half of it.
    """
    shape = _SHAPES[label]
    h, w = nucleus_mask.shape
    x0, y0 = max(int(wbc.cx - wbc.radius) - 3, 0), max(int(wbc.cy - wbc.radius) - 3, 0)
    x1, y1 = min(int(wbc.cx + wbc.radius) + 4, w), min(int(wbc.cy + wbc.radius) + 4, h)
    box = (y1 - y0, x1 - x0)
    nucleus_cover = _fill(wbc.nucleus - [x0, y0], box)  # coverage, 0-255
    cell_cover = np.maximum(_fill(wbc.cell - [x0, y0], box), nucleus_cover)
    nucleus, cell = nucleus_cover >= 128, cell_cover >= 128

    # Cytoplasm: a smooth colour variation and, for L3, clear vacuoles.
    cyto_density = 1.0 + 0.12 * _field(rng, (4, 4), box)
    n_vacuoles = int(rng.integers(shape.vacuoles[0], shape.vacuoles[1] + 1))
    if n_vacuoles:
        # Vacuoles lie inside the cytoplasm, at least their largest radius from its edge.
        reach = max(1, round(shape.vacuole_radius[1] * scale))
        cytoplasm = (cell & ~nucleus).view(np.uint8)
        inner = cv2.erode(cytoplasm, np.ones((3, 3), np.uint8), iterations=reach)
        ys, xs = np.nonzero(inner)
        if xs.size:
            holes = np.zeros(box, np.uint8)
            for k in rng.integers(0, xs.size, n_vacuoles):
                _circle(holes, xs[k], ys[k], rng.uniform(*shape.vacuole_radius) * scale)
            holes = cv2.GaussianBlur(holes, (0, 0), 0.5 * scale + 0.2)
            cyto_density *= 1.0 - (0.85 / 255) * holes.astype(np.float32)

    # Nucleus: chromatin texture at two scales, and pale nucleoli.
    k = shape.chromatin_cells
    chromatin = 0.6 * _field(rng, (k, k), box) + 0.4 * _field(rng, (3 * k, 3 * k), box)
    nuc_density = rng.uniform(0.92, 1.08) + shape.chromatin * chromatin
    n_nucleoli = int(rng.integers(shape.nucleoli[0], shape.nucleoli[1] + 1))
    if n_nucleoli:
        # Nucleoli are spread uniformly over a disc around the nucleus centre, well inside.
        centre = wbc.nucleus.mean(axis=0)
        extent = 0.45 * np.hypot(*(wbc.nucleus - centre).T).min()
        spots = np.zeros(box, np.uint8)
        for _ in range(n_nucleoli):
            angle = rng.uniform(0.0, 2 * math.pi)
            dist = math.sqrt(rng.random()) * extent
            radius = rng.uniform(*shape.nucleolus_radius) * scale
            x = centre[0] - x0 + dist * math.cos(angle)
            y = centre[1] - y0 + dist * math.sin(angle)
            _circle(spots, x, y, radius)
        spots = cv2.GaussianBlur(spots, (0, 0), 0.8 * scale + 0.3)
        nuc_density *= 1.0 - (0.5 / 255) * spots.astype(np.float32)

    # Blend by coverage: the cell hides what lies under it (the white cell sits in
    # the tinted plasma), and the nucleus hides the cytoplasm.
    roi = od[:, y0:y1, x0:x1]
    cyto_od = tint_od[:, None, None] + (_CYTOPLASM_OD[label] * stain)[:, None, None] * cyto_density
    nuc_od = tint_od[:, None, None] + (_NUCLEUS_OD * stain)[:, None, None] * nuc_density
    roi += (cell_cover.astype(np.float32) / 255) * (cyto_od - roi)
    roi += (nucleus_cover.astype(np.float32) / 255) * (nuc_od - roi)
    nucleus_mask[y0:y1, x0:x1] |= nucleus
    cell_mask[y0:y1, x0:x1] |= cell


# Shapes are drawn with OpenCV's integer rasteriser, with 4 fractional bits
# (1/16 px) of sub-pixel precision.
_SUBPIXEL_BITS = 4


def _fill(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Coverage (uint8, 0-255) of the polygon ``points`` ((N, 2) x, y) in an image of ``size``."""
    cover = np.zeros(size, np.uint8)
    fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(cover, [fixed], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    return cover


def _circle(image: np.ndarray, x: float, y: float, radius: float, antialiased: bool = True) -> None:
    """Draw a filled circle with a sub-pixel centre: 255 anti-aliased, else 1 on pixels inside."""
    one = 1 << _SUBPIXEL_BITS
    centre = (int(round(x * one)), int(round(y * one)))
    value, line = (255, cv2.LINE_AA) if antialiased else (1, cv2.LINE_8)
    cv2.circle(image, centre, int(round(radius * one)), value, -1, line, _SUBPIXEL_BITS)


def _field(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [-1, 1] of ``size``: a ``cells`` grid of uniform noise, upsampled."""
    coarse = rng.integers(0, 256, size=cells, dtype=np.uint8)
    # Resizing 8-bit values with INTER_LINEAR_EXACT is bit-exact on every machine.
    fine = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_LINEAR_EXACT)
    return fine.astype(np.float32) * (2 / 255) - 1.0


_NOISE_TILE = 512


@lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """A fixed (512, 512, 3) tile of standard normal noise, shared by all images."""
    tile = np.random.default_rng(0x5EED_B100D).standard_normal(
        (_NOISE_TILE, _NOISE_TILE, 3), dtype=np.float32
    )
    tile.flags.writeable = False  # shared between threads
    return tile


def _sensor_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Standard normal pixel noise (H, W, 3): a window of the noise tile at a random place.

    Drawing fresh normal numbers would make every image about 1.6 times slower to
    render; at a few grey levels, a shifted window of a fixed tile looks the same.
    """
    tile = _noise_tile()
    if h > _NOISE_TILE or w > _NOISE_TILE:  # a large image: repeat the tile
        tile = np.tile(tile, (-(-h // _NOISE_TILE), -(-w // _NOISE_TILE), 1))
    y = int(rng.integers(tile.shape[0] - h + 1))
    x = int(rng.integers(tile.shape[1] - w + 1))
    return tile[y : y + h, x : x + w]
