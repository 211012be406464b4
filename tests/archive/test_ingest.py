"""Ingest: a received file becomes a durable file plus index rows, or a clear refusal with nothing written."""
import hashlib
from pathlib import Path

import pytest

from archive import status
from archive.choices import IngestEventKind
from archive.ingest import ingest_file
from archive.models import IngestEvent, Instance, Series, Study
from archive.storage import archive_storage
from radiology.models import Patient
from tests.archive.factories import (
    COMPRESSED_TESTDATA, UNCOMPRESSED_TESTDATA, ingest_dataset, make_dataset, copy_of_testdata, write_part10,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    return Path(settings.STORAGE_LOCATION)


def archived_files(folder):
    return [path for path in folder.rglob("*.dcm") if ".incoming" not in path.parts]


def test_a_new_instance_is_indexed_at_every_level():
    dataset = make_dataset(modality="MR", accession_number="A-77", study_description="MR KNEE")
    result = ingest_dataset(dataset, calling_ae="MODALITY1")
    assert (result.status, result.outcome) == (status.SUCCESS, "stored")
    instance = Instance.objects.get(sop_instance_uid=dataset.SOPInstanceUID)
    study = instance.series.study
    assert (study.accession_number, study.study_description, study.modalities_in_study) == ("A-77", "MR KNEE", "MR")
    assert (study.number_of_series, study.number_of_instances) == (1, 1)
    assert instance.received_from == "MODALITY1"
    assert instance.header["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert "7FE00010" not in instance.header


def test_the_stored_file_is_the_received_file_with_its_sha256(tmp_path):
    source = write_part10(make_dataset(), tmp_path / "in.dcm")
    instance = ingest_file(source).instance
    stored = archive_storage().path(instance.storage_key)
    assert stored.read_bytes() == source.read_bytes()
    assert instance.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert instance.file_size == source.stat().st_size


def test_file_names_come_from_hashes_not_from_tag_values(archive_folder):
    dataset = make_dataset(patient_name="../../etc^passwd", patient_id="../../x")
    instance = ingest_dataset(dataset).instance
    assert dataset.SOPInstanceUID not in instance.storage_key
    assert ".." not in instance.storage_key
    assert archive_storage().path(instance.storage_key).is_relative_to(archive_folder)


def test_counts_and_modalities_follow_new_series_and_instances():
    study_uid, series_uid = "1.2.3.4.100", "1.2.3.4.100.1"
    for number in (1, 2):
        ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number))
    ingest_dataset(make_dataset(study_uid=study_uid, series_uid="1.2.3.4.100.2", modality="SR"))
    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.number_of_series, study.number_of_instances, study.modalities_in_study) == (2, 3, "CT\\SR")
    assert Series.objects.get(series_instance_uid=series_uid).number_of_instances == 2


def test_an_identical_second_copy_succeeds_without_a_new_file(archive_folder):
    dataset = make_dataset()
    ingest_dataset(dataset)
    second = ingest_dataset(dataset)
    assert (second.status, second.outcome) == (status.SUCCESS, "duplicate")
    assert len(archived_files(archive_folder)) == 1
    assert Study.objects.get().number_of_instances == 1


def test_a_different_second_copy_keeps_the_first_and_warns(archive_folder):
    first = make_dataset(study_description="FIRST")
    ingest_dataset(first)
    changed = make_dataset(sop_uid=first.SOPInstanceUID, study_uid=first.StudyInstanceUID,
                           series_uid=first.SeriesInstanceUID, study_description="SECOND")
    result = ingest_dataset(changed)
    assert (result.status, result.outcome) == (status.ELEMENTS_DISCARDED, "kept-first")
    assert Instance.objects.get().header["00081030"]["Value"] == ["FIRST"]
    assert len(archived_files(archive_folder)) == 1
    event = IngestEvent.objects.get(kind=IngestEventKind.DUPLICATE_DIFFERENT_CONTENT)
    assert event.sop_instance_uid == first.SOPInstanceUID


def test_the_replace_policy_swaps_in_the_new_copy(settings, archive_folder):
    settings.ARCHIVE_DUPLICATE_POLICY = "replace"
    first = make_dataset(study_description="FIRST")
    ingest_dataset(first)
    changed = make_dataset(sop_uid=first.SOPInstanceUID, study_uid=first.StudyInstanceUID,
                           series_uid=first.SeriesInstanceUID, study_description="SECOND")
    assert ingest_dataset(changed).outcome == "replaced"
    assert Instance.objects.get().header["00081030"]["Value"] == ["SECOND"]


def test_the_reject_policy_refuses_the_new_copy(settings):
    settings.ARCHIVE_DUPLICATE_POLICY = "reject"
    first = make_dataset()
    ingest_dataset(first)
    result = ingest_dataset(make_dataset(sop_uid=first.SOPInstanceUID, study_description="OTHER"))
    assert (result.status, result.outcome) == (status.DUPLICATE_SOP_INSTANCE, "rejected")


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_a_missing_uid_is_refused_and_nothing_is_written(archive_folder, keyword):
    dataset = make_dataset()
    delattr(dataset, keyword)
    result = ingest_dataset(dataset)
    assert (result.status, result.outcome) == (status.DATASET_MISMATCH, "rejected")
    assert keyword in result.reason
    assert not archived_files(archive_folder) and not Instance.objects.exists()


def test_an_invalid_uid_is_refused_and_nothing_is_written(archive_folder):
    result = ingest_dataset(make_dataset(study_uid="1.2.03.abc"))
    assert result.status == status.DATASET_MISMATCH
    assert "not a valid UID" in result.reason
    assert not archived_files(archive_folder) and not Study.objects.exists()


def test_a_file_that_is_not_dicom_cannot_be_understood(tmp_path, archive_folder):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a DICOM file" * 20)
    result = ingest_file(junk)
    assert (result.status, result.outcome) == (status.CANNOT_UNDERSTAND, "rejected")
    assert junk.exists(), "a refused source file is left where it was"
    assert not archived_files(archive_folder)


def test_a_sop_instance_uid_that_differs_from_the_request_is_refused(tmp_path):
    path = write_part10(make_dataset(sop_uid="1.2.3.4.5"), tmp_path / "in.dcm")
    result = ingest_file(path, expected_sop_instance_uid="1.2.3.4.6")
    assert result.status == status.DATASET_MISMATCH


def test_a_full_disk_answers_out_of_resources_with_nothing_half_written(monkeypatch, archive_folder):
    storage = archive_storage()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "store", disk_full)
    result = ingest_dataset(make_dataset())
    assert (result.status, result.outcome) == (status.OUT_OF_RESOURCES, "rejected")
    assert "No space left" in result.reason
    assert not Instance.objects.exists()
    assert not list(storage.incoming.iterdir())


def test_a_file_in_the_incoming_folder_is_moved_not_copied(archive_folder):
    storage = archive_storage()
    with storage.incoming_file() as handle:
        make_dataset().save_as(handle, enforce_file_format=True)
    ingest_file(handle.name)
    assert not list(storage.incoming.iterdir())
    assert len(archived_files(archive_folder)) == 1


def test_a_new_patient_is_created_from_the_demographics():
    ingest_dataset(make_dataset(patient_id="P-9", patient_name="Nakamura^Aiko", birth_date="19850721", sex="F"))
    patient = Patient.objects.get(mrn="P-9")
    assert (patient.family_name, patient.given_name, str(patient.birth_date), patient.sex) == (
        "Nakamura", "Aiko", "1985-07-21", "F")


def test_differing_demographics_are_recorded_never_overwritten():
    Patient.objects.create(mrn="P-1", family_name="Doe", given_name="Jane")
    ingest_dataset(make_dataset(patient_id="P-1", patient_name="Smith^Jane"))
    assert Patient.objects.get(mrn="P-1").family_name == "Doe"
    event = IngestEvent.objects.get(kind=IngestEventKind.DEMOGRAPHICS_CONFLICT)
    assert event.detail["family_name"] == {"stored": "Doe", "received": "Smith"}
    assert Study.objects.get().patient_name == "Smith^Jane", "the study keeps what the modality sent"


def test_patients_are_told_apart_by_issuer():
    ingest_dataset(make_dataset(patient_id="123", IssuerOfPatientID="HOSP-A"))
    ingest_dataset(make_dataset(patient_id="123", IssuerOfPatientID="HOSP-B"))
    assert sorted(Patient.objects.values_list("issuer", flat=True)) == ["HOSP-A", "HOSP-B"]


def test_an_instance_without_patient_id_gets_a_derived_one():
    ingest_dataset(make_dataset(patient_id="", patient_name="Anon^A"))
    ingest_dataset(make_dataset(patient_id="", patient_name="Anon^A"))
    [patient] = Patient.objects.all()
    assert patient.mrn.startswith("NOID-")
    assert patient.studies.count() == 2


@pytest.mark.parametrize("name", COMPRESSED_TESTDATA + UNCOMPRESSED_TESTDATA)
def test_every_accepted_transfer_syntax_is_stored_as_it_arrived(tmp_path, name):
    source = copy_of_testdata(name, tmp_path)
    result = ingest_file(source)
    assert result.outcome == "stored", result.reason
    assert archive_storage().path(result.instance.storage_key).read_bytes() == source.read_bytes()


def test_a_failed_index_write_keeps_the_file_of_an_identical_indexed_copy(monkeypatch):
    """Two associations storing the same instance at once share one file: the one whose index write fails
    must not delete it from under the other."""
    from django.db import OperationalError

    from archive import ingest

    dataset = make_dataset()
    stored = ingest_dataset(dataset).instance
    monkeypatch.setattr(ingest, "_existing", lambda model, **key: None)  # the race: neither saw the other

    def database_gone(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(ingest, "_index", database_gone)
    with pytest.raises(OperationalError):
        ingest_dataset(dataset)
    assert archive_storage().path(stored.storage_key).exists()
