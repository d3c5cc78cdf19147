"""One explanation page per image, composed with OpenCV (fast enough for a batch command).

The page ``leukolib explain`` writes for every image::

    +------------------------------------------------------------+
    | file name                      predicted class (probability)|
    +--------------+---------------------------------------------+
    | input with   |  class probabilities, one bar per class      |
    | the nucleus  |  (the predicted class in purple)             |
    | outlined     |                                              |
    +--------------+--------------+--------------+---------------+
    | Grad-CAM     | Grad-CAM++   | HiResCAM     | XGrad-CAM     |
    | on nucleus   | on nucleus   | ...          |               |
    +--------------+--------------+--------------+---------------+

Drawing it with matplotlib costs more than the four maps; OpenCV draws it in
a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from leukolib.explain.figures import cam_overlay, method_label
from leukolib.explain.localization import energy_share

__all__ = ["explain_batch", "explain_page"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (30, 30, 30)
_PURPLE = (123, 94, 167)
_GREY = (200, 200, 200)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.5,
          color: tuple[int, int, int] = _INK, bold: bool = False) -> None:
    cv2.putText(img, text, (x, y), _FONT, scale, color, 2 if bold else 1, cv2.LINE_AA)


def _fit(text: str, width: int, scale: float) -> str:
    """``text`` shortened with "..." to fit ``width`` pixels."""
    while text and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[:-4] + "..." if len(text) > 4 else ""
    return text


def _bars(probs: np.ndarray, class_names: Sequence[str], width: int, height: int,
          scale: float) -> np.ndarray:
    panel = np.full((height, width, 3), 255, np.uint8)
    n = len(probs)
    row = max(14, min(40, (height - 20) // max(n, 1)))
    label_w = min(width // 3, 12 + max(cv2.getTextSize(str(c), _FONT, scale, 1)[0][0]
                                       for c in class_names))
    bar_w = width - label_w - 70
    top = max(6, (height - row * n) // 2)
    best = int(np.argmax(probs))
    for k, (name, p) in enumerate(zip(class_names, probs, strict=True)):
        y = top + k * row
        _text(panel, _fit(str(name), label_w - 8, scale), 6, y + row // 2 + 5, scale,
              bold=k == best)
        cv2.rectangle(panel, (label_w, y + 3), (label_w + bar_w, y + row - 3), _GREY, -1)
        color = _PURPLE if k == best else (150, 150, 150)
        cv2.rectangle(panel, (label_w, y + 3), (label_w + int(round(bar_w * p)), y + row - 3),
                      color, -1)
        _text(panel, f"{p:.3f}", label_w + bar_w + 6, y + row // 2 + 5, scale, bold=k == best)
    return panel


def explain_page(
    image: np.ndarray,
    cams: Mapping[str, np.ndarray],
    probs: np.ndarray,
    class_names: Sequence[str],
    mask: np.ndarray | None = None,
    title: str = "",
    target: int | None = None,
    panel: int = 224,
) -> np.ndarray:
    """Compose the explanation page of one image (RGB ``uint8``).

    Parameters
    ----------
    image : ndarray of uint8, (S, S, 3)
        What the network saw.
    cams : mapping of method to ``(S, S)`` map
    probs : ndarray, (C,)
        Class probabilities.
    class_names : sequence of str
    mask : ndarray of bool (S, S), optional
        Nucleus at input resolution: outlined, and the share of each map on it
        printed under the map.
    title : str
        Printed at the top left (e.g. the file name).
    target : int, optional
        The explained class, when it is not the predicted one.
    panel : int
        Side of each image panel in pixels (images are resized to it).

    Examples
    --------
    >>> img = np.zeros((32, 32, 3), np.uint8)
    >>> page = explain_page(img, {"gradcam": np.zeros((32, 32))}, np.array([0.2, 0.8]), ["a", "b"])
    >>> page.dtype, page.shape[1] >= 3 * 224
    (dtype('uint8'), True)
    """
    from leukolib.plotting import draw_contour

    probs = np.asarray(probs, dtype=np.float64)
    scale = 0.45 * panel / 224 + 0.1
    head, label_h = int(30 * panel / 224) + 6, int(24 * panel / 224) + 6
    ncols = max(3, len(cams))
    width = ncols * panel
    page = np.full((head + panel + label_h + (panel + label_h if cams else 0), width, 3), 255,
                   np.uint8)

    def put(rgb: np.ndarray, y: int, x: int) -> None:
        page[y:y + panel, x:x + panel] = cv2.resize(rgb, (panel, panel),
                                                    interpolation=cv2.INTER_LINEAR)

    best = int(np.argmax(probs))
    verdict = f"predicted {class_names[best]} ({probs[best]:.3f})"
    if target is not None and int(target) != best:
        verdict += f", explaining {class_names[int(target)]}"
    vw = cv2.getTextSize(verdict, _FONT, scale * 1.1, 2)[0][0]
    _text(page, _fit(title, width - vw - 30, scale * 1.1), 8, head - 10, scale * 1.1)
    _text(page, verdict, width - vw - 8, head - 10, scale * 1.1, bold=True)
    shown = image if mask is None else draw_contour(image, mask)
    put(shown, head, 0)
    _text(page, "input" + (" (nucleus in cyan)" if mask is not None else ""), 6,
          head + panel + label_h - 10, scale)
    page[head:head + panel, panel:] = _bars(probs, class_names, width - panel, panel, scale)
    y = head + panel + label_h
    for k, (name, cam) in enumerate(cams.items()):
        put(cam_overlay(image, cam, mask), y, k * panel)
        label = method_label(name)
        if mask is not None:
            share = float(energy_share(cam, mask)[0])
            label += f"  on nucleus {share:.2f}" if np.isfinite(share) else "  (empty map)"
        _text(page, _fit(label, panel - 8, scale), k * panel + 6, y + panel + label_h - 10, scale)
    return page


def explain_batch(
    model,
    x,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray] | None,
    class_names: Sequence[str],
    methods: str | Sequence[str] = "all",
    titles: Sequence[str] | None = None,
    target: int | None = None,
    panel: int = 224,
    layer: str = "layer4",
) -> list[tuple[np.ndarray, dict[str, object]]]:
    """Pages and score rows of a batch: the work of ``leukolib explain`` per batch.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor (N, 3, S, S)
        Normalised inputs.
    images : sequence of uint8 (S, S, 3)
        What the network sees (for the overlays).
    masks : sequence of bool (S, S), optional
        Nuclei at input resolution.
    class_names : sequence of str
    methods : str or sequence of str
    titles : sequence of str, optional
        Page titles (file names).
    target : int, optional
        Explain this class instead of the prediction.
    panel : int
    layer : str
        The ResNet stage the maps look at (:func:`~leukolib.explain.cams.target_layer`).

    Returns
    -------
    list of (page, row)
        The RGB page and a dict of scores: ``predicted, probability``, the
        probability of every class (``p_<class>``) and, with masks, each
        method's ``share_<method>`` and ``pointing_<method>``.
    """
    from leukolib.explain.cams import compute_cams
    from leukolib.explain.localization import pointing_game

    batch = compute_cams(model, x, methods, targets=target, batch_size=len(x), layer=layer)
    probs = batch.probabilities
    out = []
    for i in range(len(x)):
        cams = {m: c[i] for m, c in batch.cams.items()}
        mask = None if masks is None else np.asarray(masks[i], bool)
        best = int(probs[i].argmax())
        row: dict[str, object] = {"predicted": class_names[best],
                                  "probability": float(probs[i, best]),
                                  "explained": class_names[int(batch.targets[i])]}
        row.update({f"p_{c}": float(p) for c, p in zip(class_names, probs[i], strict=True)})
        for m, cam in cams.items():
            row[f"share_{m}"] = float(energy_share(cam, mask)[0]) if mask is not None else None
            row[f"pointing_{m}"] = (float(pointing_game(cam, mask)[0]) if mask is not None
                                    else None)
        page = explain_page(images[i], cams, probs[i], class_names, mask,
                            "" if titles is None else str(titles[i]),
                            None if target is None else int(batch.targets[i]), panel)
        out.append((page, row))
    return out
