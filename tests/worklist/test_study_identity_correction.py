"""Correcting an archived study's patient and accession number (archive.identity): every stored file is
rewritten with the new attributes under a new key, the index follows in one transaction, the old files go only
after the commit, and a failure anywhere leaves the study exactly as it was."""
import datetime
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from archive import identity
from archive.identity import IdentityCorrectionError, correct_study_identity
from archive.ingest import ingest_file
from archive.models import Instance, Study
from archive.rendering import thumbnail_cache_path
from archive.storage import FilesystemStorage, archive_storage, file_digest
from radiology.choices import AuditChannel, AuditEventCode, Sex
from radiology.models import AuditEvent
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    return Path(settings.STORAGE_LOCATION)


@pytest.fixture
def right_patient(db):
    """Jane Roe, MRN R-1001 of the hospital's issuer: who the images really show."""
    return PatientFactory(mrn="R-1001", issuer="HOSP", family_name="Roe", given_name="Jane",
                          birth_date=datetime.date(1981, 2, 3), sex=Sex.FEMALE)


@pytest.fixture
def mistyped_study(db):
    """Two CT images sent with a mistyped Patient ID and no accession number."""
    study_uid, series_uid = generate_uid(), generate_uid()
    for number in (1, 2):
        ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number,
                                    patient_id="R-10O1", patient_name="Roe^Jnae", birth_date="19810302",
                                    accession_number=""))
    return Study.objects.get(study_instance_uid=study_uid)


def correct(study, patient, accession_number="2026000042", **options):
    return correct_study_identity(study, patient=patient, accession_number=accession_number, user=None,
                                  channel=AuditChannel.WEB, **options)


def stored_dataset(instance):
    with archive_storage().open(instance.storage_key) as handle:
        return dcmread(handle)


def archived_files(folder):
    return sorted(path for path in folder.rglob("*.dcm") if ".incoming" not in path.parts)


def test_each_file_is_rewritten_with_the_patient_and_accession_number(mistyped_study, right_patient,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        correct(mistyped_study, right_patient)
    for instance in Instance.objects.filter(series__study=mistyped_study):
        dataset = stored_dataset(instance)
        assert (dataset.PatientID, dataset.IssuerOfPatientID, str(dataset.PatientName), dataset.PatientBirthDate,
                dataset.PatientSex, dataset.AccessionNumber) == ("R-1001", "HOSP", "Roe^Jane", "19810203", "F",
                                                                 "2026000042")


def test_each_instance_gets_the_key_digest_size_and_header_of_its_new_file(mistyped_study, right_patient,
                                                                            django_capture_on_commit_callbacks):
    before = {instance.pk: instance for instance in Instance.objects.filter(series__study=mistyped_study)}
    with django_capture_on_commit_callbacks(execute=True):
        correct(mistyped_study, right_patient)
    for instance in Instance.objects.filter(series__study=mistyped_study):
        size, sha256 = file_digest(archive_storage().path(instance.storage_key))
        assert (instance.file_size, instance.sha256) == (size, sha256)
        assert instance.sha256 != before[instance.pk].sha256
        assert instance.storage_key == FilesystemStorage.key_for(instance.sop_instance_uid, sha256)
        assert instance.header["00100020"]["Value"] == ["R-1001"]
        assert instance.header["00080050"]["Value"] == ["2026000042"]


def test_the_study_belongs_to_the_patient_with_the_accession_number(mistyped_study, right_patient):
    correct(mistyped_study, right_patient)
    study = Study.objects.get(pk=mistyped_study.pk)
    assert (study.patient, study.dicom_patient_id, study.issuer_of_patient_id, study.patient_name,
            study.patient_birth_date, study.patient_sex, study.accession_number) == (
        right_patient, "R-1001", "HOSP", "Roe^Jane", "19810203", "F", "2026000042")
    assert study.size_bytes == sum(Instance.objects.filter(series__study=study).values_list("file_size", flat=True))


def test_the_old_files_are_deleted_only_after_the_commit(mistyped_study, right_patient, archive_folder,
                                                         django_capture_on_commit_callbacks):
    old_files = archived_files(archive_folder)
    with django_capture_on_commit_callbacks() as callbacks:
        correct(mistyped_study, right_patient)
    assert all(path.exists() for path in old_files)
    for callback in callbacks:
        callback()
    assert not any(path.exists() for path in old_files)
    assert len(archived_files(archive_folder)) == 2


def test_compressed_pixel_data_is_copied_unchanged(right_patient, tmp_path, django_capture_on_commit_callbacks):
    result = ingest_file(copy_of_testdata("JPEG2000.dcm", tmp_path, patient_id="WRONG"))
    before = stored_dataset(result.instance)
    with django_capture_on_commit_callbacks(execute=True):
        correct(result.instance.series.study, right_patient)
    after = stored_dataset(Instance.objects.get(pk=result.instance.pk))
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"
    assert after.PixelData == before.PixelData
    assert after.PatientID == "R-1001"


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_files_in_other_encodings_keep_their_transfer_syntax_and_pixels(name, right_patient, tmp_path):
    result = ingest_file(copy_of_testdata(name, tmp_path, patient_id="WRONG"))
    before = stored_dataset(result.instance)
    correct(result.instance.series.study, right_patient)
    after = stored_dataset(Instance.objects.get(pk=result.instance.pk))
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.PixelData == before.PixelData
    assert (after.PatientID, after.AccessionNumber) == ("R-1001", "2026000042")


def test_a_name_the_file_cannot_encode_switches_the_file_to_utf8(db, tmp_path):
    patient = PatientFactory(mrn="M-1", family_name="Müller", given_name="Jürgen")
    result = ingest_dataset(make_dataset(patient_id="WRONG", study_description="CT KOPF"))
    correct(result.instance.series.study, patient)
    dataset = stored_dataset(Instance.objects.get(pk=result.instance.pk))
    assert dataset.SpecificCharacterSet == "ISO_IR 192"
    assert (str(dataset.PatientName), dataset.StudyDescription) == ("Müller^Jürgen", "CT KOPF")


def test_an_empty_issuer_leaves_the_attribute_out(mistyped_study):
    local_patient = PatientFactory(mrn="L-7", issuer="")
    correct(mistyped_study, local_patient)
    instance = Instance.objects.filter(series__study=mistyped_study).first()
    assert "IssuerOfPatientID" not in stored_dataset(instance)


def test_a_storage_failure_midway_leaves_files_and_index_as_they_were(mistyped_study, right_patient,
                                                                      archive_folder, monkeypatch):
    files_before = {path: path.read_bytes() for path in archived_files(archive_folder)}
    index_before = list(Instance.objects.filter(series__study=mistyped_study).values_list(
        "storage_key", "sha256", "file_size", "header").order_by("pk"))
    real_store, stores = FilesystemStorage.store, []

    def store_then_fail(self, source_path, key):
        if stores:
            raise OSError(28, "No space left on device")
        stores.append(key)
        real_store(self, source_path, key)

    monkeypatch.setattr(FilesystemStorage, "store", store_then_fail)
    with pytest.raises(IdentityCorrectionError, match="No space left on device"):
        correct(mistyped_study, right_patient)
    assert {path: path.read_bytes() for path in archived_files(archive_folder)} == files_before
    assert list(Instance.objects.filter(series__study=mistyped_study).values_list(
        "storage_key", "sha256", "file_size", "header").order_by("pk")) == index_before
    study = Study.objects.get(pk=mistyped_study.pk)
    assert (study.dicom_patient_id, study.accession_number) == ("R-10O1", "")
    assert not list((archive_folder / ".incoming").iterdir())


def test_a_failure_in_the_same_transaction_undoes_the_correction(mistyped_study, right_patient, archive_folder):
    files_before = archived_files(archive_folder)

    def refuse(study):
        raise ValueError("order 2026000042 is cancelled")

    with pytest.raises(ValueError, match="cancelled"):
        correct(mistyped_study, right_patient, then=refuse)
    assert archived_files(archive_folder) == files_before
    study = Study.objects.get(pk=mistyped_study.pk)
    assert (study.patient_id, study.dicom_patient_id) != (right_patient.pk, "R-1001")
    assert not AuditEvent.objects.filter(code=AuditEventCode.PATIENT_RECORD).exists()


def test_an_unreadable_stored_file_refuses_the_correction(mistyped_study, right_patient):
    instance = Instance.objects.filter(series__study=mistyped_study).first()
    archive_storage().path(instance.storage_key).write_bytes(b"not DICOM")
    with pytest.raises(IdentityCorrectionError, match=f"cannot rewrite instance {instance.sop_instance_uid}"):
        correct(mistyped_study, right_patient)
    assert Study.objects.get(pk=mistyped_study.pk).dicom_patient_id == "R-10O1"


def test_the_change_is_audited_with_old_and_new_values(mistyped_study, right_patient):
    old_patient = mistyped_study.patient
    correct(mistyped_study, right_patient)
    patient_record = AuditEvent.objects.get(code=AuditEventCode.PATIENT_RECORD)
    assert (patient_record.patient, patient_record.object_id, patient_record.channel) == (
        right_patient, mistyped_study.study_instance_uid, AuditChannel.WEB)
    assert patient_record.detail["old"]["dicom_patient_id"] == "R-10O1"
    assert patient_record.detail["new"]["dicom_patient_id"] == "R-1001"
    assert patient_record.detail["previous_patient"] == old_patient.pk
    procedure_record = AuditEvent.objects.get(code=AuditEventCode.PROCEDURE_RECORD)
    assert (procedure_record.detail["old"], procedure_record.detail["new"]) == (
        {"accession_number": ""}, {"accession_number": "2026000042"})


def test_dicomweb_metadata_shows_the_corrected_attributes(client, radiologist, mistyped_study, right_patient):
    client.force_login(radiologist)
    url = f"/dicomweb/studies/{mistyped_study.study_instance_uid}/metadata"
    assert client.get(url).json()[0]["00100020"]["Value"] == ["R-10O1"]
    correct(mistyped_study, right_patient)
    assert {item["00100020"]["Value"][0] for item in client.get(url).json()} == {"R-1001"}


def test_the_thumbnails_of_the_old_files_are_removed(mistyped_study, right_patient, client, radiologist,
                                                     django_capture_on_commit_callbacks):
    client.force_login(radiologist)
    series = mistyped_study.series.get()
    assert client.get(f"/studies/{mistyped_study.pk}/series/{series.pk}/thumbnail.png").status_code == 200
    thumbnails = [thumbnail_cache_path(instance.sha256, 128) for instance in series.instances.all()]
    assert any(path.exists() for path in thumbnails)
    with django_capture_on_commit_callbacks(execute=True):
        correct(mistyped_study, right_patient)
    assert not any(path.exists() for path in thumbnails)


def test_identity_values_leave_an_unknown_sex_empty(db):
    patient = PatientFactory(sex=Sex.UNKNOWN, birth_date=None)
    values = identity.identity_values(patient, "A1")
    assert (values["PatientSex"], values["PatientBirthDate"]) == ("", "")

