"""Rendered and thumbnail resources (PS3.18 8.3.5, 8.3.6): frames as JPEG or PNG pictures, with window,
viewport and quality, read by dicomweb-client and decoded with Pillow; bad requests answered in HTTP terms."""
import io

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset

ROWS, COLUMNS = 32, 64


@pytest.fixture
def token(db, radiologist):
    return Token.objects.create(user=radiologist).key


@pytest.fixture
def series(db):
    """Three instances of one series, each with its own window so that their pictures differ."""
    study_uid, series_uid = generate_uid(), generate_uid()
    instances = [ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number,
                                             rows=ROWS, columns=COLUMNS, WindowCenter=-200 + 150 * number))
                 .instance for number in (1, 2, 3)]
    return instances[0].series


def instance_numbered(series, number):
    return series.instances.get(instance_number=number)


def url(series, instance=None, resource="rendered"):
    path = f"/dicomweb/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}"
    if instance is not None:
        path += f"/instances/{instance.sop_instance_uid}"
    return f"{path}/{resource}"


def get(client, path, token, accept=None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    if accept:
        headers["HTTP_ACCEPT"] = accept
    return client.get(path, params, **headers)


def picture(response):
    return Image.open(io.BytesIO(response.content))


@pytest.fixture
def dicomweb(live_server, transactional_db, radiologist):
    token = Token.objects.create(user=radiologist).key
    return DICOMwebClient(f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token}"})


def test_dicomweb_client_gets_an_instance_as_a_jpeg_of_its_size(dicomweb, series):
    instance = instance_numbered(series, 1)
    content = dicomweb.retrieve_instance_rendered(
        series.study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid)
    image = Image.open(io.BytesIO(content))
    assert (image.format, image.size) == ("JPEG", (COLUMNS, ROWS))


def test_dicomweb_client_gets_a_png_when_it_asks_for_one(dicomweb, series):
    instance = instance_numbered(series, 1)
    content = dicomweb.retrieve_instance_rendered(
        series.study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid,
        media_types=("image/png",))
    image = Image.open(io.BytesIO(content))
    assert (image.format, image.size, image.mode) == ("PNG", (COLUMNS, ROWS), "L")


def test_a_rendered_series_is_its_middle_instance(dicomweb, series):
    middle = instance_numbered(series, 2)
    rendered_series = dicomweb.retrieve_series_rendered(
        series.study.study_instance_uid, series.series_instance_uid, media_types=("image/png",))
    rendered_middle = dicomweb.retrieve_instance_rendered(
        series.study.study_instance_uid, series.series_instance_uid, middle.sop_instance_uid,
        media_types=("image/png",))
    rendered_first = dicomweb.retrieve_instance_rendered(
        series.study.study_instance_uid, series.series_instance_uid, instance_numbered(series, 1).sop_instance_uid,
        media_types=("image/png",))
    assert rendered_series == rendered_middle != rendered_first


def test_a_rendered_study_is_the_middle_instance_of_its_series(client, token, series):
    study_path = f"/dicomweb/studies/{series.study.study_instance_uid}/rendered"
    study_picture = get(client, study_path, token, accept="image/png")
    middle_picture = get(client, url(series, instance_numbered(series, 2)), token, accept="image/png")
    assert study_picture.status_code == 200
    assert study_picture.content == middle_picture.content


def test_the_viewport_scales_the_picture_to_fit_keeping_its_aspect_ratio(client, token, series):
    response = get(client, url(series, instance_numbered(series, 1)), token, viewport="32,32")
    assert picture(response).size == (32, 16)


def test_the_window_parameter_overrides_the_window_of_the_instance(client, token, series):
    instance = instance_numbered(series, 1)
    default = np.asarray(picture(get(client, url(series, instance), token, accept="image/png")))
    # Pixel values 1..4096 stored with intercept -1024: a window of width 1 at 0 HU splits them black and white.
    narrow = np.asarray(picture(get(client, url(series, instance), token, accept="image/png", window="0,1,linear")))
    assert set(np.unique(narrow)) == {0, 255}
    assert not np.array_equal(default, narrow)


def test_a_lower_jpeg_quality_gives_a_smaller_picture(client, token, series):
    instance = instance_numbered(series, 1)
    low = get(client, url(series, instance), token, quality="5", viewport="512,256")
    high = get(client, url(series, instance), token, quality="100", viewport="512,256")
    assert picture(low).format == picture(high).format == "JPEG"
    assert len(low.content) < len(high.content)


def test_a_frame_of_a_multi_frame_instance_is_rendered(client, token, tmp_path):
    dataset = dcmread(copy_of_testdata("SC_rgb_rle_2frame.dcm", tmp_path))
    instance = ingest_dataset(dataset).instance
    path = url(instance.series, instance, "frames/{}/rendered")
    first, second = (get(client, path.format(number), token, accept="image/png") for number in (1, 2))
    assert first.status_code == second.status_code == 200
    assert picture(first).size == (dataset.Columns, dataset.Rows)
    assert first.content != second.content
    assert get(client, path.format(dataset.NumberOfFrames + 1), token).status_code == 404


@pytest.mark.parametrize("frames", ["0", "1,2", "x"])
def test_a_frame_list_or_a_bad_frame_number_is_a_bad_request(client, token, series, frames):
    path = url(series, instance_numbered(series, 1), f"frames/{frames}/rendered")
    assert get(client, path, token).status_code == 400


def test_a_thumbnail_of_a_series_is_a_small_picture(client, token, series):
    response = get(client, url(series, resource="thumbnail"), token, accept="image/png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert picture(response).size == (128, 64)


@pytest.mark.parametrize("level", ["study", "instance", "frame"])
def test_thumbnails_exist_at_each_level_as_jpeg(client, token, series, level):
    instance = instance_numbered(series, 1)
    path = {"study": f"/dicomweb/studies/{series.study.study_instance_uid}/thumbnail",
            "instance": url(series, instance, "thumbnail"),
            "frame": url(series, instance, "frames/1/thumbnail")}[level]
    response = get(client, path, token)
    assert response.status_code == 200
    assert (picture(response).format, picture(response).size) == ("JPEG", (128, 64))


def test_a_thumbnail_follows_the_viewport(client, token, series):
    response = get(client, url(series, resource="thumbnail"), token, viewport="40,40")
    assert picture(response).size == (40, 20)


@pytest.mark.parametrize("params", [
    {"window": "40"}, {"window": "a,b,linear"}, {"window": "40,400,sigmoid"}, {"window": "40,0,linear"},
    {"viewport": "0,10"}, {"viewport": "10"}, {"viewport": "10,10,0,0,5,5"}, {"quality": "0"},
    {"quality": "101"}, {"annotation": "patient"},
])
def test_bad_rendering_parameters_are_a_bad_request(client, token, series, params):
    response = get(client, url(series, instance_numbered(series, 1)), token, **params)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_an_unknown_parameter_is_named_in_the_refusal(client, token, series):
    response = get(client, url(series, instance_numbered(series, 1)), token, contrast="high")
    assert response.status_code == 400 and "contrast" in response.json()["detail"]


def test_a_thumbnail_takes_no_window(client, token, series):
    assert get(client, url(series, resource="thumbnail"), token, window="40,400,linear").status_code == 400


def test_unknown_uids_are_not_found(client, token, series):
    study, other = series.study.study_instance_uid, generate_uid()
    assert get(client, f"/dicomweb/studies/{other}/rendered", token).status_code == 404
    assert get(client, f"/dicomweb/studies/{study}/series/{other}/rendered", token).status_code == 404
    path = f"/dicomweb/studies/{study}/series/{series.series_instance_uid}/instances/{other}/rendered"
    assert get(client, path, token).status_code == 404


def test_a_malformed_uid_is_a_bad_request(client, token, series):
    path = f"/dicomweb/studies/{series.study.study_instance_uid}/series/1.2.x/rendered"
    assert get(client, path, token).status_code == 400


def test_a_media_type_other_than_jpeg_or_png_is_not_acceptable(client, token, series):
    response = get(client, url(series, instance_numbered(series, 1)), token, accept="image/gif")
    assert response.status_code == 406


def test_pixel_data_that_cannot_be_decoded_is_unprocessable(client, token, db):
    dataset = make_dataset(rows=ROWS, columns=COLUMNS)
    dataset.PixelData = b"\x00" * 10  # far fewer bytes than 32 x 64 16-bit pixels
    instance = ingest_dataset(dataset).instance
    response = get(client, url(instance.series, instance), token)
    assert response.status_code == 422


def test_rendered_pictures_are_not_served_anonymously(client, series):
    assert client.get(url(series, instance_numbered(series, 1))).status_code == 401
