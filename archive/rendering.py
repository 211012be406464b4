"""Turning stored pixel data into pictures: one frame as a PIL image, thumbnails as PNG.

The portal's series thumbnails use `thumbnail_png`; DICOMweb's rendered and thumbnail resources (PS3.18 8.3.5,
8.3.6) can call `render_frame` and `encode_image` with their own frame, window and viewport.

The pipeline follows the grayscale and color image transformation models of PS3.4 N.2: decode (pydicom with
the installed pylibjpeg plugins for JPEG, JPEG-LS, JPEG 2000 and RLE), modality LUT, VOI window, and
MONOCHROME1 inversion (presentation LUT shape); color images are brought to RGB.
"""
import hashlib
import io
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image
from pydicom import dcmread
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, pixel_array

from archive.storage import archive_storage

logger = logging.getLogger(__name__)

# Part of every cached thumbnail's name: change it when the rendering changes, so old pictures are not served.
RENDERING_VERSION = 1
THUMBNAIL_FOLDER = "thumbnails"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Color spaces that pydicom's decoders may hand back as they are and that need converting to RGB.
_YBR = ("YBR_FULL", "YBR_FULL_422")
# PS3.5 8.2.4: JPEG 2000's component transforms, which the JPEG 2000 decoder itself undoes: the decoded
# samples are RGB.
_JPEG_2000_COMPONENT_TRANSFORMS = ("YBR_ICT", "YBR_RCT")


class RenderError(Exception):
    """The pixel data cannot be turned into a picture (no pixel data, unsupported or corrupt encoding)."""


def render_frame(dataset, frame=0, window=None, size=None):
    """One frame of `dataset` (a pydicom Dataset with its pixel data) as an 8-bit PIL image ("L" or "RGB").

    `window` is (center, width) to override the dataset's VOI window; `size` is the longest side in pixels,
    or a (width, height) box, that the picture is scaled to fit, keeping its aspect ratio."""
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        raise RenderError("the instance has no pixel data")
    frames = _number_of_frames(dataset)
    if not 0 <= frame < frames:
        raise RenderError(f"frame {frame + 1} does not exist: the instance has {frames} frame(s)")
    try:
        # raw: samples in the stored color space; the conversion to RGB is done here, visibly, below.
        pixels = pixel_array(dataset, index=frame, raw=True)
    except Exception as exc:  # noqa: BLE001 - decoders raise many types (RuntimeError, ValueError, …)
        raise RenderError(f"cannot decode the pixel data ({_transfer_syntax_name(dataset)}): {exc}") from exc
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    try:
        if photometric in ("MONOCHROME1", "MONOCHROME2"):
            image = Image.fromarray(_grayscale(pixels, dataset, frame, window, photometric), mode="L")
        else:
            image = Image.fromarray(_color(pixels, dataset, photometric), mode="RGB")
    except RenderError:
        raise
    except Exception as exc:  # noqa: BLE001 - inconsistent attributes (LUT descriptors, bit depths)
        raise RenderError(f"cannot render {photometric or 'unknown'} pixel data: {exc}") from exc
    return _fit(image, size) if size else image


def encode_image(image, media_type="image/png", quality=90):
    """`image` as PNG or JPEG bytes; `quality` (1-100) is the JPEG quality factor."""
    buffer = io.BytesIO()
    if media_type == "image/png":
        image.save(buffer, format="PNG", optimize=False)
    elif media_type == "image/jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unsupported media type {media_type!r}")
    return buffer.getvalue()


def thumbnail_png(instance, size=128):
    """A PNG picture of the middle frame of a stored instance, its longest side `size` pixels.

    Cached on disk under the data directory by the SHA-256 of the stored file, so a replaced file gets a new
    picture and no UID or tag value ever becomes part of a path."""
    cached = thumbnail_cache_path(instance.sha256, size)
    try:
        return cached.read_bytes()
    except FileNotFoundError:
        pass
    with archive_storage().open(instance.storage_key) as handle:
        try:
            dataset = dcmread(handle)
        except Exception as exc:  # noqa: BLE001 - the stored file itself cannot be parsed
            raise RenderError(f"cannot read the stored file: {exc}") from exc
        frame = _number_of_frames(dataset) // 2
        png = encode_image(render_frame(dataset, frame=frame, size=size))
    _write_atomically(cached, png)
    return png


def thumbnail_cache_path(sha256, size):
    """Where the thumbnail of the file with content digest `sha256` is kept (a path made of the hash only)."""
    if not _SHA256.match(sha256 or ""):
        raise ValueError(f"not a SHA-256 digest: {sha256!r}")
    name = f"{sha256}.{int(size)}.v{RENDERING_VERSION}.png"
    return Path(settings.DATA_DIR) / THUMBNAIL_FOLDER / sha256[:2] / sha256[2:4] / name


def thumbnail_etag(sha256, size):
    """An entity tag for a thumbnail: changes with the file's content, the size and the rendering version."""
    return hashlib.sha256(f"{sha256}:{int(size)}:{RENDERING_VERSION}".encode()).hexdigest()[:32]


def _grayscale(pixels, dataset, frame, window, photometric):
    window = window or _dataset_window(dataset, frame)
    if window is not None and pixels.dtype.kind in "iu" and pixels.dtype.itemsize <= 2:
        # Integer images of up to 16 bits: transform each stored value that occurs once, then look pixels up
        # (a 512×512 CT slice: one pass over at most 65,536 values instead of float arithmetic per pixel).
        low, high = int(pixels.min()), int(pixels.max())
        lookup = _grayscale_values(np.arange(low, high + 1, dtype=np.int32), dataset, frame, window, photometric)
        return lookup[pixels.astype(np.int32) - low]
    return _grayscale_values(pixels, dataset, frame, window, photometric)


def _grayscale_values(pixels, dataset, frame, window, photometric):
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    center, width = window or _min_max_window(values)
    scaled = _linear_window(values, center, width)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled  # PS3.3 C.7.6.3.1.2: minimum value is displayed white
    return np.rint(scaled * 255).astype(np.uint8)


def _linear_window(values, center, width):
    """PS3.3 C.11.2.1.2.1 linear VOI function, scaled to 0..1."""
    width = max(float(width), 1.0)
    lower = center - 0.5 - (width - 1) / 2
    if width == 1.0:
        return (values > lower).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _dataset_window(dataset, frame):
    """The first Window Center / Window Width of the image (PS3.3 C.11.2), or of the frame's functional
    groups in an enhanced multi-frame image; None when absent or not a usable number."""
    sources = [dataset]
    for group_sequence in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = dataset.get(group_sequence)
        if groups:
            item = groups[min(frame, len(groups) - 1)] if group_sequence.startswith("PerFrame") else groups[0]
            voi = item.get("FrameVOILUTSequence")
            if voi:
                sources.append(voi[0])
    for source in sources:
        center, width = _first(source.get("WindowCenter")), _first(source.get("WindowWidth"))
        if center is not None and width is not None and width >= 1:
            return center, width
    return None


def _first(value):
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _min_max_window(values):
    """A window over the whole range of values, for images that name none."""
    low, high = float(np.min(values)), float(np.max(values))
    return (low + high + 1) / 2, max(high - low + 1, 1.0)


def _color(pixels, dataset, photometric):
    if photometric == "PALETTE COLOR":
        bits = _lut_entry_bits(dataset)
        rgb = apply_color_lut(pixels, dataset)
        return _to_8_bits(rgb, bits)
    if photometric in _YBR:
        pixels = convert_color_space(pixels, photometric, "RGB")
    elif photometric not in ("RGB", *_JPEG_2000_COMPONENT_TRANSFORMS):
        raise RenderError(f"photometric interpretation {photometric!r} is not supported")
    bits_stored = int(dataset.get("BitsStored") or 8)
    return _to_8_bits(pixels, bits_stored)


def _lut_entry_bits(dataset):
    descriptor = dataset.get("RedPaletteColorLookupTableDescriptor")
    return int(descriptor[2]) if descriptor else 16


def _to_8_bits(pixels, bits):
    if pixels.dtype == np.uint8 and bits <= 8:
        return pixels
    maximum = float((1 << bits) - 1)
    return np.rint(np.clip(pixels.astype(np.float64), 0, maximum) / maximum * 255).astype(np.uint8)


def _fit(image, size):
    """Scale to fit a box (a side length or (width, height)), up or down, keeping the aspect ratio."""
    box_width, box_height = (size, size) if isinstance(size, int) else size
    scale = min(box_width / image.width, box_height / image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if target == image.size:
        return image
    return image.resize(target, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)


def _number_of_frames(dataset):
    try:
        return max(int(dataset.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _transfer_syntax_name(dataset):
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return syntax.name if syntax is not None else "unknown transfer syntax"


def _write_atomically(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as handle:
        handle.write(content)
    os.replace(handle.name, path)
