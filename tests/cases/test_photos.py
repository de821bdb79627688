"""Case photos: checked by content, size-limited, EXIF (GPS, camera) stripped, thumbnails made."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gisgrid.cases.photos import PhotoError, resolve, store_photo

LIMITS = {"max_bytes": 2_000_000, "max_pixels": 4_000_000, "thumb_px": 64}


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (400, 300), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0112] = 6  # orientation: rotate 90° to show upright
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (22.0, 41.0, 0.0), "E", (114.0, 12.0, 0.0)
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_a_jpeg_is_stored_without_exif_upright_and_with_a_thumbnail(tmp_path):
    raw = _jpeg_with_gps()
    assert b"PhoneMaker" in raw
    stored = store_photo(raw, tmp_path, **LIMITS)
    body = resolve(tmp_path, stored.path).read_bytes()
    assert b"PhoneMaker" not in body and b"Model X" not in body
    with Image.open(io.BytesIO(body)) as im:
        assert not im.getexif() and "exif" not in im.info
        assert im.size == (300, 400)  # the orientation was applied to the pixels
    with Image.open(resolve(tmp_path, stored.thumb_path)) as thumb:
        assert max(thumb.size) == 64
    assert stored.content_type == "image/jpeg" and stored.width == 300 and len(stored.sha256) == 64


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(tmp_path, fmt):
    buf = io.BytesIO()
    Image.new("RGBA", (50, 40), (1, 2, 3, 128)).save(buf, fmt)
    stored = store_photo(buf.getvalue(), tmp_path, **LIMITS)
    assert stored.content_type == f"image/{fmt.lower()}"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"<html><script>alert(1)</script></html>", "not_an_image"),
        (b"GIF89a" + b"\0" * 50, "not_an_image"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 10, "unreadable"),  # says JPEG, is not one
        (b"\xff\xd8\xff" + b"\0" * 3_000_000, "too_large"),
    ],
)
def test_anything_else_is_refused_with_a_reason(tmp_path, data, code):
    with pytest.raises(PhotoError) as info:
        store_photo(data, tmp_path, name="upload.jpg", **LIMITS)
    assert info.value.code == code and info.value.http_status_code == 400
    assert "upload.jpg" in str(info.value)
    assert not any(tmp_path.rglob("*.*"))  # nothing written


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    buf = io.BytesIO()
    Image.new("L", (3000, 2000)).save(buf, "PNG")  # 6 Mpx of zeros: a small file
    with pytest.raises(PhotoError) as info:
        store_photo(buf.getvalue(), tmp_path, **LIMITS)
    assert info.value.code == "too_many_pixels"


def test_a_stored_path_cannot_leave_the_photo_folder(tmp_path):
    with pytest.raises(ValueError):
        resolve(tmp_path, "../../etc/passwd")
