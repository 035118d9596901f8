"""Mask PNGs: one 0/255 PNG per object, or one DAVIS-palette PNG of object ids; and reading them back."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.atomic import atomic_path, write_bytes_atomic
from sam2cli.io.overlay import _encode_image
from sam2cli.io.writer_args import IdsLike, PathLike, _as_masks, _obj_ids, candidate_index


@lru_cache(maxsize=1)
def davis_palette() -> bytes:
    """The 256-colour DAVIS / PASCAL VOC palette (768 bytes RGB): 0 black, 1 dark red, 2 dark green, ...

    Colour ``i`` takes bit ``3k + c`` of ``i`` as bit ``7 - k`` of channel ``c``.
    """
    pal = bytearray()
    for i in range(256):
        rgb = [0, 0, 0]
        c = i
        for k in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - k)
            c >>= 3
        pal.extend(rgb)
    return bytes(pal)


def save_mask_pngs(
    dir: PathLike,  # noqa: A002 - public name from the spec
    stem: str,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    mode: str = "binary",
    scores: Optional[Union[Sequence[float], np.ndarray]] = None,
) -> list[Path]:
    """Write masks as PNGs into ``dir``; returns the written paths.

    * ``mode='binary'``: one 0/255 grayscale PNG per object, ``<stem>_<objid>.png``.
    * ``mode='palette'``: one DAVIS-palette PNG ``<stem>.png`` whose pixel value is the
      object id (0 = background; ids must be 1-255). Where objects overlap the pixel
      goes to the **later** object in ``masks`` order, or, when ``scores`` is given, to
      the **higher-scoring** object.

    When an id repeats, its masks are candidates of one object (``multimask_output=True``,
    see :func:`~sam2cli.io.writer_args.candidate_index`) and every candidate gets its own
    file: ``<stem>_<objid>_c<k>.png`` (binary), or ``<stem>_c<k>.png`` holding candidate
    ``k`` of every object (palette).
    """
    out_dir = Path(dir)
    m = _as_masks(masks)
    ids = _obj_ids(obj_ids, len(m))
    cand = candidate_index(ids, len(m))
    if cand is not None and mode == "palette":
        written = []
        for k in range(int(cand.max()) + 1):
            sel = np.flatnonzero(cand == k)
            s_k = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)[sel]
            written += save_mask_pngs(out_dir, f"{stem}_c{k}", m[sel], [ids[i] for i in sel], mode, s_k)
        return written
    if mode == "binary":
        written = []
        for i, (mask, oid) in enumerate(zip(m, ids)):
            path = out_dir / (f"{stem}_{oid}.png" if cand is None else f"{stem}_{oid}_c{cand[i]}.png")
            write_bytes_atomic(path, _encode_image(path, mask.astype(np.uint8) * 255))
            written.append(path)
        return written
    if mode != "palette":
        raise UsageError(f"unknown mask mode {mode!r}; use 'binary' or 'palette'")
    bad = [i for i in ids if not 1 <= i <= 255]
    if bad:
        raise UsageError(f"palette PNGs hold object ids 1-255, got {bad[0]}; use binary mask PNGs instead")
    order: Iterable[int] = range(len(m))
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(s) != len(m):
            raise ValueError(f"got {len(s)} scores for {len(m)} masks")
        order = np.argsort(s, kind="stable")  # paint low -> high: the highest score ends on top
    label = np.zeros(m.shape[1:], dtype=np.uint8)
    for i in order:
        label[m[i]] = ids[i]
    img = Image.fromarray(label)
    img.putpalette(davis_palette())
    path = out_dir / f"{stem}.png"
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return [path]


def read_palette_png(path: PathLike) -> np.ndarray:
    """Object-id map ``(H, W)`` uint8 of a palette PNG written by :func:`save_mask_pngs`."""
    with Image.open(path) as img:
        if img.mode not in ("P", "L"):
            raise SAM2Error(f"{path} is not a palette mask PNG (mode {img.mode}); save it with mode 'palette'")
        return np.array(img)
