"""Rendering pixel data: modality LUT, VOI window, MONOCHROME1, color spaces, frames, compressed syntaxes."""
import io

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from archive.rendering import RenderError, encode_image, render_frame, thumbnail_png
from tests.archive.factories import (
    COMPRESSED_TESTDATA, UNCOMPRESSED_TESTDATA, bundled_file_path, ingest_dataset, make_dataset,
)


def grayscale(values, **attributes):
    """A 16-bit unsigned monochrome dataset whose stored values are `values` (a 2-D list or array)."""
    values = np.asarray(values, dtype=np.uint16)
    frames = values.shape[0] if values.ndim == 3 else 1
    rows, columns = values.shape[-2:]
    dataset = make_dataset(rows=rows, columns=columns)
    dataset.PixelData = values.tobytes()
    if frames > 1:
        dataset.NumberOfFrames = frames
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        delattr(dataset, keyword)
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return dataset


def gray_levels(image):
    assert image.mode == "L"
    return np.asarray(image).tolist()


def test_the_window_maps_its_range_to_black_through_white():
    # PS3.3 C.11.2.1.2.1: center 100, width 101: black up to 49.5, white above 149.5, linear between.
    dataset = grayscale([[0, 49, 75, 100, 150, 300]], WindowCenter=100, WindowWidth=101)
    assert gray_levels(render_frame(dataset)) == [[0, 0, 65, 129, 255, 255]]


def test_the_modality_lut_applies_before_the_window():
    # Stored 1064 with intercept -1024 is 40 HU, the center of a 40/400 window.
    dataset = grayscale([[0, 1064, 4000]], RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    assert gray_levels(render_frame(dataset)) == [[0, 128, 255]]


def test_the_first_of_several_windows_is_used():
    dataset = grayscale([[0, 100, 200]], WindowCenter=[100, 1000], WindowWidth=[101, 10])
    assert gray_levels(render_frame(dataset)) == [[0, 129, 255]]


def test_without_a_window_the_values_span_black_to_white():
    assert gray_levels(render_frame(grayscale([[1000, 1500, 2000]]))) == [[0, 128, 255]]


def test_a_requested_window_replaces_the_datasets():
    dataset = grayscale([[0, 100, 200]], WindowCenter=5000, WindowWidth=10)
    assert gray_levels(render_frame(dataset, window=(100, 101))) == [[0, 129, 255]]


def test_monochrome1_shows_the_lowest_value_white():
    dataset = grayscale([[0, 100, 200]], PhotometricInterpretation="MONOCHROME1")
    assert gray_levels(render_frame(dataset)) == [[255, 128, 0]]


def test_a_frame_of_a_multi_frame_image_is_chosen_by_index():
    frames = np.zeros((3, 2, 2), dtype=np.uint16)
    frames[1] = [[0, 100], [0, 100]]
    dataset = grayscale(frames, WindowCenter=50, WindowWidth=100)
    assert gray_levels(render_frame(dataset, frame=1)) == [[0, 255], [0, 255]]
    with pytest.raises(RenderError, match="frame 4 does not exist"):
        render_frame(dataset, frame=3)


def test_a_thumbnail_of_a_multi_frame_image_shows_the_middle_frame(db):
    frames = np.zeros((3, 8, 8), dtype=np.uint16)
    frames[1, :, :4] = 100  # only the middle frame has a bright left half
    dataset = grayscale(frames, WindowCenter=50, WindowWidth=100)
    instance = ingest_dataset(dataset).instance
    picture = np.asarray(Image.open(io.BytesIO(thumbnail_png(instance, size=8))))
    assert picture[:, :4].min() == 255 and picture[:, 4:].max() == 0


def test_ybr_full_jpeg_comes_out_as_rgb():
    image = render_frame(dcmread(bundled_file_path("SC_rgb_jpeg_dcmtk.dcm")))
    red, green, blue = np.asarray(image)[0, 0].tolist()  # the file's top band is pure red
    assert image.mode == "RGB" and red > 240 and green < 15 and blue < 15


def test_16_bit_rgb_is_scaled_to_8_bits():
    image = render_frame(dcmread(bundled_file_path("SC_rgb_rle_16bit.dcm")))
    assert np.asarray(image)[0, 0].tolist() == [255, 0, 0]


def test_palette_color_is_looked_up():
    dataset = dcmread(bundled_file_path("examples_palette.dcm"))
    image = render_frame(dataset)
    assert image.mode == "RGB" and image.size == (dataset.Columns, dataset.Rows)
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 16


@pytest.mark.parametrize("name", COMPRESSED_TESTDATA + UNCOMPRESSED_TESTDATA + [
    "SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jls_lossy_line.dcm", "SC_ybr_full_422_uncompressed.dcm",
    "JPEGLSNearLossless_16.dcm", "693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "SC_rgb_rle_2frame.dcm", "rtdose_rle.dcm"])
def test_each_bundled_image_renders(name):
    dataset = dcmread(bundled_file_path(name))
    image = render_frame(dataset, frame=int(dataset.get("NumberOfFrames") or 1) // 2)
    assert image.size == (dataset.Columns, dataset.Rows)
    assert image.mode == ("RGB" if dataset.SamplesPerPixel == 3 else "L")
    assert np.asarray(image).std() > 0  # a picture, not a blank


def test_an_undecodable_file_raises_a_render_error():
    with pytest.raises(RenderError, match="cannot decode the pixel data .JPEG Extended"):
        render_frame(dcmread(bundled_file_path("JPEG-lossy.dcm")))


def test_a_dataset_without_pixel_data_raises_a_render_error():
    dataset = make_dataset()
    del dataset.PixelData
    with pytest.raises(RenderError, match="no pixel data"):
        render_frame(dataset)


@pytest.mark.parametrize("size, expected", [(128, (32, 128)), ((64, 32), (8, 32)), (2048, (512, 2048))])
def test_the_picture_fits_the_requested_size_keeping_its_aspect(size, expected):
    # JPEG2000.dcm is 256 columns by 1024 rows; pictures are scaled down or up to fit.
    assert render_frame(dcmread(bundled_file_path("JPEG2000.dcm")), size=size).size == expected


def test_images_encode_as_png_and_jpeg():
    image = render_frame(grayscale([[0, 100], [200, 300]]))
    assert Image.open(io.BytesIO(encode_image(image))).format == "PNG"
    assert Image.open(io.BytesIO(encode_image(image, "image/jpeg"))).format == "JPEG"
    with pytest.raises(ValueError):
        encode_image(image, "image/gif")
