"""`manage.py import_dicom PATH…`: files and folders, a summary, a non-zero exit on rejections, safe re-runs."""
import io

import pytest
from django.core.management import CommandError, call_command

from archive.models import Instance
from radiology.models import AuditEvent
from tests.archive.factories import make_dataset, write_part10

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@pytest.fixture
def folder_of_instances(tmp_path):
    folder = tmp_path / "cd"
    (folder / "series1").mkdir(parents=True)
    for number in range(3):
        write_part10(make_dataset(instance_number=number), folder / "series1" / f"IM{number}")
    write_part10(make_dataset(), folder / "single.dcm")
    return folder


def import_dicom(*paths):
    out = io.StringIO()
    call_command("import_dicom", *map(str, paths), "--quiet", stdout=out)
    return out.getvalue()


def test_a_folder_is_imported_recursively(folder_of_instances):
    output = import_dicom(folder_of_instances)
    assert Instance.objects.count() == 4
    assert "4 files: 4 stored, 0 duplicates, 0 kept the stored copy, 0 rejected" in output


def test_running_again_reports_duplicates_and_stores_nothing_new(folder_of_instances):
    import_dicom(folder_of_instances)
    output = import_dicom(folder_of_instances)
    assert "4 files: 0 stored, 4 duplicates" in output
    assert Instance.objects.count() == 4


def test_any_rejection_makes_the_exit_non_zero(folder_of_instances):
    (folder_of_instances / "notes.txt").write_text("not an image")
    with pytest.raises(SystemExit) as exit_info:
        import_dicom(folder_of_instances)
    assert exit_info.value.code == 1
    assert Instance.objects.count() == 4, "the good files are imported all the same"


def test_the_summary_names_each_rejected_file(folder_of_instances):
    bad = folder_of_instances / "notes.txt"
    bad.write_text("not an image")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("import_dicom", str(folder_of_instances), "--quiet", stdout=out)
    assert f"rejected: {bad}: not a decodable DICOM file" in out.getvalue()
    assert "(status 0xC000)" in out.getvalue()


def test_a_missing_path_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        import_dicom(tmp_path / "nowhere")


def test_an_import_is_audited(folder_of_instances):
    import_dicom(folder_of_instances)
    event = AuditEvent.objects.get(code="import")
    assert event.detail["stored"] == 4
