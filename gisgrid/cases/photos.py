"""Case photos on disk: checked by content, EXIF stripped, thumbnails made (Pillow; no database, no Flask).

Photos live under the data folder (``<var_dir>/photos/YYYY/MM/``), never in
the database, which keeps only their path, size and digest
(``case_photo``).  An upload is accepted when its bytes *are* a JPEG, PNG or
WebP image (magic bytes, then Pillow decodes it) — the file name and the
browser's content type are not believed — and it is no larger than the
``photo_max_bytes`` setting nor than ``photo_max_pixels`` pixels (a
decompression bomb is refused before decoding).

The stored image is re-encoded from its pixels, so nothing of the upload's
metadata survives: no EXIF (GPS position, camera, serial number), no XMP, no
text chunks.  The EXIF orientation is applied to the pixels first, so a
photo taken upright stays upright.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from gisgrid.errors import InputError
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)

#: Magic bytes → (content type, file extension, Pillow format).
FORMATS = {
    "jpeg": ("image/jpeg", "jpg", "JPEG"),
    "png": ("image/png", "png", "PNG"),
    "webp": ("image/webp", "webp", "WEBP"),
}
KINDS = ("before", "after")


class PhotoError(InputError):
    """A photo refused: not an image, empty, too large, or unreadable.  ``code`` names which."""

    def __init__(self, code: str, reason: str, *, name: str | None = None):
        super().__init__(N_("%(name)s: %(reason)s", name=name, reason=reason) if name else reason)
        self.code = code
        self.name = name


def sniff(data: bytes) -> str | None:
    """The format by magic bytes: ``"jpeg"``, ``"png"``, ``"webp"``, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class StoredPhoto:
    """A photo written under the photo folder: paths relative to it, and what the database keeps."""

    path: str
    thumb_path: str
    content_type: str
    bytes: int
    width: int
    height: int
    sha256: str


def photo_root(var_dir: str | Path) -> Path:
    return Path(var_dir) / "photos"


def check_photo(data: bytes, *, max_bytes: int, name: str | None = None) -> str:
    """The format of an upload, or :class:`PhotoError` (empty, too large, not JPEG/PNG/WebP)."""
    if not data:
        raise PhotoError("empty", N_("the photo is empty"), name=name)
    if len(data) > max_bytes:
        raise PhotoError(
            "too_large",
            N_(
                "the photo has %(mb)s MB; at most %(max)s MB", mb=f"{len(data) / 1e6:.1f}", max=f"{max_bytes / 1e6:.1f}"
            ),
            name=name,
        )
    fmt = sniff(data)
    if fmt is None:
        raise PhotoError("not_an_image", N_("not a photo: only JPEG, PNG and WebP images are accepted"), name=name)
    return fmt


def store_photo(
    data: bytes,
    var_dir: str | Path,
    *,
    max_bytes: int,
    max_pixels: int,
    thumb_px: int,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> StoredPhoto:
    """Check ``data``, write it (metadata stripped) and its thumbnail under ``<var_dir>/photos``.

    Raises
    ------
    PhotoError
        With ``code`` ``empty``, ``too_large``, ``not_an_image``,
        ``too_many_pixels`` or ``unreadable``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    fmt = check_photo(data, max_bytes=max_bytes, name=name)
    content_type, ext, pil_format = FORMATS[fmt]
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise PhotoError(
                    "too_many_pixels",
                    N_("the photo has %(w)s×%(h)s pixels; at most %(max)s", w=width, h=height, max=f"{max_pixels:,}"),
                    name=name,
                )
            probe.load()
            image = ImageOps.exif_transpose(probe)
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PhotoError(
            "unreadable", N_("the photo cannot be read (%(why)s)", why=type(exc).__name__), name=name
        ) from None
    clean = _without_metadata(image, fmt)
    out = io.BytesIO()
    _save(clean, out, fmt)
    body = out.getvalue()
    thumb = clean.copy()
    thumb.thumbnail((thumb_px, thumb_px))
    tout = io.BytesIO()
    _save(thumb, tout, fmt)
    now = now or dt.datetime.now(dt.timezone.utc)
    folder = Path(f"{now:%Y}") / f"{now:%m}"
    stem = secrets.token_hex(16)
    rel, rel_thumb = folder / f"{stem}.{ext}", folder / f"{stem}.thumb.{ext}"
    root = photo_root(var_dir)
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(body)
    (root / rel_thumb).write_bytes(tout.getvalue())
    return StoredPhoto(
        path=str(rel),
        thumb_path=str(rel_thumb),
        content_type=content_type,
        bytes=len(body),
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(body).hexdigest(),
    )


def _without_metadata(image, fmt: str):
    """A copy holding only the pixels (no ``info``: no EXIF, XMP, ICC text, PNG text chunks)."""
    from PIL import Image

    mode = image.mode
    if fmt == "jpeg" and mode not in ("RGB", "L", "CMYK"):
        mode = "RGB"
    elif mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
    elif mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16"):
        mode = "RGBA" if "A" in mode else "RGB"
    pixels = image.convert(mode) if image.mode != mode else image
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    return clean


def _save(image, out, fmt: str) -> None:
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "png":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=85)


def resolve(var_dir: str | Path, rel: str) -> Path:
    """The file of a stored relative path, refusing anything outside the photo folder."""
    root = photo_root(var_dir).resolve()
    path = (root / rel).resolve()
    if root not in path.parents:
        raise InputError("not a photo path")
    return path
