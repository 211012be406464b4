"""Series thumbnails on the study page: rendered from the stored file, cached on disk, never faked."""
import io
import logging

import pytest
from PIL import Image
from pydicom import dcmread

from archive.rendering import encode_image, render_frame, thumbnail_cache_path
from archive.storage import archive_storage
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset
from tests.factories import UserFactory

BUNDLED_IMAGES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
                  "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm"]


def archived_copy(name, tmp_path):
    """A copy of one of pydicom's bundled files (fresh UIDs) in the archive; returns its Series."""
    path = copy_of_testdata(name, tmp_path)
    result = ingest_dataset(dcmread(path))
    assert result.ok, result.reason
    return result.instance.series


def thumbnail_url(series):
    return f"/studies/{series.study_id}/series/{series.pk}/thumbnail.png"


def expected_size(series, longest_side=128):
    instance = series.instances.get()
    scale = longest_side / max(instance.columns, instance.rows)
    return round(instance.columns * scale), round(instance.rows * scale)


@pytest.mark.parametrize("name", BUNDLED_IMAGES)
def test_a_bundled_file_gives_a_png_of_the_right_size(client, radiologist, tmp_path, name):
    series = archived_copy(name, tmp_path)
    client.force_login(radiologist)
    response = client.get(thumbnail_url(series))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == expected_size(series)
    image.verify()


def test_the_thumbnail_is_of_the_middle_instance(client, radiologist, db):
    series = None
    for number in (1, 2, 3):  # each with its own window, so that their pictures differ
        dataset = make_dataset(instance_number=number, WindowCenter=-200 + 150 * number,
                               study_uid=series and series.study.study_instance_uid,
                               series_uid=series and series.series_instance_uid)
        series = ingest_dataset(dataset).instance.series
    pictures = {}
    for instance in series.instances.all():
        with archive_storage().open(instance.storage_key) as handle:
            pictures[instance.instance_number] = encode_image(render_frame(dcmread(handle), size=128))
    assert len(set(pictures.values())) == 3
    client.force_login(radiologist)
    assert client.get(thumbnail_url(series)).content == pictures[2]


def test_thumbnails_are_cached_on_disk_under_a_path_made_of_the_file_hash(client, radiologist, tmp_path):
    series = archived_copy("CT_small.dcm", tmp_path)
    instance = series.instances.get()
    client.force_login(radiologist)
    first = client.get(thumbnail_url(series)).content
    cached = thumbnail_cache_path(instance.sha256, 128)
    assert cached.read_bytes() == first
    assert instance.sop_instance_uid not in str(cached) and instance.sha256 in cached.name
    stand_in = io.BytesIO()
    Image.new("L", (4, 4)).save(stand_in, format="PNG")
    cached.write_bytes(stand_in.getvalue())
    assert client.get(thumbnail_url(series)).content == stand_in.getvalue()


def test_an_unchanged_thumbnail_is_answered_not_modified(client, radiologist, tmp_path):
    series = archived_copy("MR_small.dcm", tmp_path)
    client.force_login(radiologist)
    first = client.get(thumbnail_url(series))
    assert first["ETag"] and "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    again = client.get(thumbnail_url(series), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.content == b""


def test_a_new_middle_instance_changes_the_etag(client, radiologist, db):
    series = ingest_dataset(make_dataset(instance_number=1)).instance.series
    client.force_login(radiologist)
    before = client.get(thumbnail_url(series))["ETag"]
    for number in (2, 3):
        ingest_dataset(make_dataset(study_uid=series.study.study_instance_uid,
                                    series_uid=series.series_instance_uid, instance_number=number))
    assert client.get(thumbnail_url(series), HTTP_IF_NONE_MATCH=before).status_code == 200


def test_an_undecodable_image_is_refused_with_a_reason_and_logged(client, radiologist, tmp_path, caplog):
    # JPEG-lossy.dcm: 12-bit JPEG extended that neither libjpeg nor Pillow decodes.
    series = archived_copy("JPEG-lossy.dcm", tmp_path)
    client.force_login(radiologist)
    with caplog.at_level(logging.WARNING, logger="archive.views"):
        response = client.get(thumbnail_url(series))
    assert response.status_code == 422
    assert response["Content-Type"].startswith("text/plain")
    assert "Cannot render this image" in response.content.decode()
    assert any("no thumbnail for instance" in record.getMessage() for record in caplog.records)
    assert not thumbnail_cache_path(series.instances.get().sha256, 128).exists()


def test_a_series_without_images_has_no_thumbnail(client, radiologist, db):
    report = make_dataset(modality="SR", sop_class_uid="1.2.840.10008.5.1.4.1.1.88.11")
    for keyword in ("Rows", "Columns", "PixelData"):
        delattr(report, keyword)
    series = ingest_dataset(report).instance.series
    client.force_login(radiologist)
    response = client.get(thumbnail_url(series))
    assert response.status_code == 404 and "no images" in response.content.decode()


def test_a_series_of_another_study_is_not_found(client, radiologist, db):
    series = ingest_dataset(make_dataset()).instance.series
    other = ingest_dataset(make_dataset()).instance.series.study
    client.force_login(radiologist)
    assert client.get(f"/studies/{other.pk}/series/{series.pk}/thumbnail.png").status_code == 404


def test_anonymous_visitors_get_no_thumbnail(client, db):
    series = ingest_dataset(make_dataset()).instance.series
    assert client.get(thumbnail_url(series)).status_code == 302


def test_an_account_without_a_role_gets_no_thumbnail(client, db):
    series = ingest_dataset(make_dataset()).instance.series
    client.force_login(UserFactory())
    assert client.get(thumbnail_url(series)).status_code == 403
