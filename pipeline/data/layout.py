"""Page images, system boxes and notehead pixel positions from LilyPond's PDF + probe report.

Staff lines are read as vector strokes from the PDF (exact, no thresholding); every
``staves_per_system`` consecutive staves of a page form one system, numbered in reading
order, which must equal LilyPond's own system count. A notehead's x in pixels follows from its
probe x (staff spaces, relative to the system) by the affine map that sends the staff's probe
extent [x0, x1] onto the staff lines' extent in the PDF.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from pipeline.core import constants as C
from pipeline.core.errors import PieceError

# PyMuPDF >= 1.26 imports its optional layout analysis and pymupdf4llm (with onnxruntime) at start-up
# (~0.4 s, a third of a piece job's start-up); we only rasterise pages, so those imports are declined
sys.modules.setdefault("pymupdf.layout", None)
sys.modules.setdefault("pymupdf4llm", None)
import pymupdf  # noqa: E402, I001


@dataclass
class SystemBox:
    page: int          # 0-based page index
    top: float         # [px] staff-line box on the 835-px-wide page image
    bottom: float
    left: float
    right: float


def render_pages(pdf_path, width_px: int = C.PAGE_WIDTH_PX) -> tuple[list[np.ndarray], list[float]]:
    """Grayscale uint8 page images (H, width_px), white = 255, and each page's px-per-point scale."""
    pages, scales = [], []
    with pymupdf.open(str(pdf_path)) as doc:
        for page in doc:
            zoom = width_px / page.rect.width
            pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
            img = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
            if img.shape[1] != width_px:  # rounding of the page box: pad/crop to the exact width
                img = np.pad(img, ((0, 0), (0, max(0, width_px - img.shape[1]))), constant_values=C.WHITE)[:, :width_px]
            pages.append(img.copy())
            scales.append(zoom)
    return pages, scales


def staff_line_groups(pdf_path, min_width_ratio: float = 0.25) -> list[list[tuple[float, float, float]]]:
    """Staves found in the PDF, grouped from its staff-line strokes.

    Returns for each page a list of staves ``(y_top, y_bottom, x_left, x_right)`` in points,
    sorted top to bottom. A staff = 5 horizontal strokes with the same x-extent and equal spacing.
    """
    result = []
    with pymupdf.open(str(pdf_path)) as doc:
        for page in doc:
            min_w = min_width_ratio * page.rect.width
            lines = []
            for d in page.get_drawings():
                for item in d["items"]:
                    if item[0] == "l":
                        p, q = item[1], item[2]
                        if abs(p.y - q.y) < 0.01 and abs(q.x - p.x) >= min_w:
                            lines.append((round(p.y, 3), round(min(p.x, q.x), 2), round(max(p.x, q.x), 2)))
            lines.sort()
            staves, i = [], 0
            while i + 5 <= len(lines):
                group = lines[i:i + 5]
                ys = np.array([g[0] for g in group])
                gaps = np.diff(ys)
                same_x = all(abs(g[1] - group[0][1]) < 0.5 and abs(g[2] - group[0][2]) < 0.5 for g in group)
                if same_x and gaps.min() > 0.5 and gaps.max() - gaps.min() < 0.05 * gaps.mean():
                    staves.append((float(ys[0]), float(ys[-1]), group[0][1], group[0][2]))
                    i += 5
                else:
                    i += 1
            result.append(staves)
    return result


def system_boxes(pdf_path, scales: list[float], staves_per_system: int,
                 system_widths: list[float]) -> tuple[list[SystemBox], int]:
    """System boxes in reading order (pixels of the rendered page images), and the number of
    PDF staves that belong to no system.

    ``system_widths`` [staff spaces]: LilyPond's staff-line length of each system (probe). A PDF
    staff joins the next system only if its length, in its own staff spaces (line gap), matches:
    staves drawn outside the music (incipits, examples in markup) are skipped.
    """
    boxes, group, skipped = [], [], 0
    for page, (staves, zoom) in enumerate(zip(staff_line_groups(pdf_path), scales)):
        if group:
            raise PieceError("staff grouping", f"page {page}: a system with {len(group)} recognised staves "
                             f"(expected {staves_per_system}); a staff's lines were not found in the PDF")
        for top, bottom, left, right in staves:
            k = len(boxes)
            gap = (bottom - top) / 4
            if k >= len(system_widths) or abs((right - left) / gap - system_widths[k]) > 0.5:
                skipped += 1
                continue
            group.append((top, bottom, left, right))
            if len(group) == staves_per_system:
                boxes.append(SystemBox(page, group[0][0] * zoom, group[-1][1] * zoom,
                                       min(g[2] for g in group) * zoom, max(g[3] for g in group) * zoom))
                group = []
    return boxes, skipped


def system_strip(page: np.ndarray, box: SystemBox, height: int = C.STRIP_HEIGHT_PX) -> np.ndarray:
    """The ``height``-row strip centred on the system box, columns ``left..right`` (white-padded)."""
    centre = int(round((box.top + box.bottom) / 2))
    top = centre - height // 2
    left, right = int(round(box.left)), int(round(box.right))
    padded = np.pad(page, ((height, height), (0, 0)), constant_values=C.WHITE)
    return padded[top + height: top + 2 * height, left:right].copy()
