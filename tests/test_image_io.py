"""Tests for sam2cli.io.image.load_image / is_image_file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import IMAGE_EXTENSIONS, is_image_file, load_image


def _check(arr: np.ndarray, h: int, w: int) -> None:
    assert arr.shape == (h, w, 3)
    assert arr.dtype == np.uint8
    assert arr.flags["C_CONTIGUOUS"]


def test_rgb_png_keeps_channel_order(tmp_path: Path) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[..., 2] = 10
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    out = load_image(path)
    _check(out, 4, 6)
    assert np.array_equal(out, rgb)
    assert np.array_equal(load_image(str(path)), rgb)


def test_gray_png_replicated(tmp_path: Path) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    out = load_image(path)
    _check(out, 4, 5)
    for c in range(3):
        assert np.array_equal(out[..., c], gray)


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0] = 30  # blue
    bgra[..., 1] = 60
    bgra[..., 2] = 90  # red
    bgra[..., 3] = 0  # fully transparent: no compositing, colour kept
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    out = load_image(path)
    _check(out, 3, 3)
    assert out[0, 0].tolist() == [90, 60, 30]


def test_16bit_gray_png_scaled(tmp_path: Path) -> None:
    gray = np.array([[0, 257, 33023], [65535, 1000, 128]], np.uint16)
    path = tmp_path / "g16.png"
    cv2.imwrite(str(path), gray)
    out = load_image(path)
    _check(out, 2, 3)
    expected = np.rint(gray / 257.0).astype(np.uint8)
    assert np.array_equal(out[..., 0], expected)
    assert np.array_equal(out[..., 2], expected)


def test_16bit_color_png_scaled_with_rounding(tmp_path: Path) -> None:
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[..., 0] = 1000  # blue
    bgr[..., 1] = 33023
    bgr[..., 2] = 65535  # red
    path = tmp_path / "c16.png"
    cv2.imwrite(str(path), bgr)
    out = load_image(path)
    _check(out, 2, 2)
    assert out[0, 0].tolist() == [255, 128, 4]  # round(1000/257) = 4, not 1000 >> 8 = 3


def test_palette_png(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.putpixel((1, 1), 1)
    path = tmp_path / "p.png"
    img.save(path)
    out = load_image(path)
    _check(out, 2, 4)
    assert out[1, 1].tolist() == [10, 20, 30]
    assert out[0, 0].tolist() == [0, 0, 0]


def test_exif_rotated_jpeg_swaps_hw(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (120, 10, 10))  # W=40, H=20
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    out = load_image(path)
    _check(out, 40, 20)
    # also from an open PIL image
    with Image.open(path) as pil:
        _check(load_image(pil), 40, 20)


def test_bmp_and_webp(tmp_path: Path) -> None:
    rgb = np.full((5, 7, 3), (1, 2, 3), np.uint8)
    for ext in (".bmp", ".webp"):
        path = tmp_path / f"a{ext}"
        Image.fromarray(rgb).save(path, lossless=True) if ext == ".webp" else Image.fromarray(rgb).save(path)
        _check(load_image(path), 5, 7)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(SAM2Error, match="image not found") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, UsageError)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(SAM2Error, match="corrupt or not an image") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(SAM2Error, match="corrupt"):
        load_image(path)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(SAM2Error, match="image not found"):
        load_image(tmp_path)


def test_pil_modes() -> None:
    _check(load_image(Image.new("L", (3, 2), 7)), 2, 3)
    assert load_image(Image.new("L", (3, 2), 7))[0, 0].tolist() == [7, 7, 7]
    assert load_image(Image.new("RGBA", (3, 2), (1, 2, 3, 0)))[0, 0].tolist() == [1, 2, 3]
    assert load_image(Image.new("LA", (3, 2), (9, 0)))[0, 0].tolist() == [9, 9, 9]
    assert load_image(Image.new("1", (3, 2), 1))[0, 0].tolist() == [255, 255, 255]
    assert load_image(Image.new("I;16", (3, 2), 65535))[0, 0].tolist() == [255, 255, 255]
    assert load_image(Image.new("I", (3, 2), 33023))[0, 0].tolist() == [128, 128, 128]
    _check(load_image(Image.new("CMYK", (3, 2))), 2, 3)


@pytest.mark.parametrize(
    "arr, expected",
    [
        (np.full((2, 3), 9, np.uint8), [9, 9, 9]),
        (np.full((2, 3, 1), 9, np.uint8), [9, 9, 9]),
        (np.full((2, 3, 3), (1, 2, 3), np.uint8), [1, 2, 3]),
        (np.full((2, 3, 4), (1, 2, 3, 4), np.uint8), [1, 2, 3]),
        (np.full((2, 3, 3), 65535, np.uint16), [255, 255, 255]),
        (np.full((2, 3), 514, np.uint16), [2, 2, 2]),
        (np.ones((2, 3), bool), [255, 255, 255]),
        (np.full((2, 3, 3), 0.5, np.float32), [128, 128, 128]),
        (np.full((2, 3, 3), 1.0, np.float64), [255, 255, 255]),
        (np.full((2, 3, 3), 7, np.int64), [7, 7, 7]),
    ],
)
def test_array_inputs(arr: np.ndarray, expected: list[int]) -> None:
    out = load_image(arr)
    _check(out, 2, 3)
    assert out[1, 2].tolist() == expected


def test_array_non_contiguous_becomes_contiguous() -> None:
    arr = np.zeros((4, 6, 3), np.uint8)[:, ::2]
    _check(load_image(arr), 4, 3)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 2), (2, 3, 5), (1, 2, 3, 3), (0, 4, 3)])
def test_bad_array_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(UsageError, match=r"shape"):
        load_image(np.zeros(shape, np.uint8))


def test_bad_array_values() -> None:
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        load_image(np.full((2, 2, 3), 255.0))
    with pytest.raises(UsageError, match="dtype"):
        load_image(np.full((2, 2, 3), 300, np.int32))
    with pytest.raises(UsageError, match="dtype"):
        load_image(np.zeros((2, 2, 3), np.complex64))


@pytest.mark.parametrize("bad", [123, b"bytes", [[1, 2], [3, 4]], None])
def test_unsupported_source(bad: object) -> None:
    with pytest.raises(UsageError):
        load_image(bad)


def test_is_image_file() -> None:
    assert set(IMAGE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    for name in ("a.jpg", "b.JPEG", "c.png", "d.bmp", "e.tif", "f.TIFF", "g.webp", Path("x/y.Png")):
        assert is_image_file(name)
    for name in ("a.mp4", "b.txt", "noext", "png"):
        assert not is_image_file(name)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_helper_matches_pil(orientation: int) -> None:
    from PIL import ImageOps

    from sam2cli.io.image import _apply_orientation

    arr = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    img = Image.fromarray(arr)
    img.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(_apply_orientation(arr, orientation), expected)
