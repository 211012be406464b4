"""C-FIND SCP against dcmtk's findscu: Patient Root (-P) and Study Root (-S) at every level, refusals, audit."""
import pytest

from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.qr_network import ARCHIVE_AET, dcmtk, extracted_responses, keys, register, running_listener
from tests.archive.query_archive import build_department

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def archive(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.DICOM_OPEN = False
    settings.DICOM_AET = ARCHIVE_AET
    register("FINDSCU")
    department = build_department()
    with running_listener() as listener:
        yield listener, department


def findscu(listener, folder, model, *options, **query):
    folder.mkdir(exist_ok=True)
    result = dcmtk("findscu", model, *options, "-aet", "FINDSCU", "-aec", ARCHIVE_AET, "-X", "-od", str(folder),
                   *keys(**query), "127.0.0.1", str(listener.port))
    return result, extracted_responses(folder)


def test_findscu_patient_root_finds_patients(archive, tmp_path):
    listener, _ = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-P", QueryRetrieveLevel="PATIENT", PatientName="D*",
                                PatientID=None, NumberOfPatientRelatedStudies=None)
    assert result.returncode == 0, result.stderr
    assert [(str(r.PatientName), r.PatientID, r.NumberOfPatientRelatedStudies) for r in responses] == [
        ("Doe^Jane", "PAT001", 1)]


def test_findscu_patient_root_finds_the_studies_of_a_patient(archive, tmp_path):
    listener, department = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-P", QueryRetrieveLevel="STUDY", PatientID="PAT002",
                                StudyInstanceUID=None, StudyDescription=None, ModalitiesInStudy=None)
    assert result.returncode == 0, result.stderr
    assert [(r.StudyInstanceUID, r.StudyDescription, r.ModalitiesInStudy) for r in responses] == [
        (department["john"].study_uid, "MR KNEE", "MR")]
    assert responses[0].RetrieveAETitle == ARCHIVE_AET


def test_findscu_patient_root_finds_the_series_of_a_study(archive, tmp_path):
    listener, department = archive
    jane = department["jane"]
    result, responses = findscu(listener, tmp_path / "rsp", "-P", QueryRetrieveLevel="SERIES", PatientID="PAT001",
                                StudyInstanceUID=jane.study_uid, SeriesInstanceUID=None, Modality=None)
    assert result.returncode == 0, result.stderr
    assert sorted((r.SeriesInstanceUID, r.Modality) for r in responses) == sorted(
        zip(jane.series_uids, ["CT", "MR"]))


def test_findscu_patient_root_finds_the_images_of_a_series(archive, tmp_path):
    listener, department = archive
    jane = department["jane"]
    result, responses = findscu(listener, tmp_path / "rsp", "-P", QueryRetrieveLevel="IMAGE", PatientID="PAT001",
                                StudyInstanceUID=jane.study_uid, SeriesInstanceUID=jane.series_uids[0],
                                SOPInstanceUID=None, InstanceNumber=None, Rows=None)
    assert result.returncode == 0, result.stderr
    assert [(r.SOPInstanceUID, r.InstanceNumber, r.Rows) for r in responses] == [
        (jane.sop_uids[0], 1, 16), (jane.sop_uids[1], 2, 16)]


def test_findscu_study_root_finds_studies_by_date_range_and_modality(archive, tmp_path):
    listener, department = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="STUDY",
                                StudyDate="20260101-", ModalitiesInStudy="CT", StudyInstanceUID=None,
                                PatientName=None, NumberOfStudyRelatedInstances=None)
    assert result.returncode == 0, result.stderr
    found = {r.StudyInstanceUID: (str(r.PatientName), r.NumberOfStudyRelatedInstances) for r in responses}
    assert found == {department["jane"].study_uid: ("Doe^Jane", 3),
                     department["jurgen"].study_uid: ("Müller^Jürgen", 1)}


def test_findscu_study_root_finds_the_series_of_a_study(archive, tmp_path):
    listener, department = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="SERIES",
                                StudyInstanceUID=department["john"].study_uid, SeriesDescription=None,
                                BodyPartExamined=None, NumberOfSeriesRelatedInstances=None)
    assert result.returncode == 0, result.stderr
    assert [(r.SeriesDescription, r.BodyPartExamined, r.NumberOfSeriesRelatedInstances) for r in responses] == [
        ("PD FS", "KNEE", 1)]


def test_findscu_study_root_finds_images_with_keys_from_the_header(archive, tmp_path):
    listener, department = archive
    jane = department["jane"]
    result, responses = findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="IMAGE",
                                StudyInstanceUID=jane.study_uid, SeriesInstanceUID=jane.series_uids[1],
                                SOPInstanceUID=None, PhotometricInterpretation=None)
    assert result.returncode == 0, result.stderr
    assert [(r.SOPInstanceUID, r.PhotometricInterpretation) for r in responses] == [(jane.sop_uids[2], "MONOCHROME2")]


def test_findscu_gets_identifier_does_not_match_sop_class_for_a_series_query_without_its_study(archive, tmp_path):
    listener, _ = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-S", "-d", QueryRetrieveLevel="SERIES", Modality="CT")
    assert responses == []
    assert "DIMSE Status                  : 0xa900" in result.stderr
    assert "[StudyInstanceUID (one value) is required below STUDY level] #  58, 1 ErrorComment" in result.stderr


def test_findscu_gets_a_failure_for_a_malformed_date_range(archive, tmp_path):
    listener, _ = archive
    result, responses = findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="STUDY", StudyDate="2026-01")
    assert responses == []
    assert "DataSetDoesNotMatchSOPClass" in result.stderr


def test_each_c_find_is_audited_with_its_level_keys_and_patient(archive, tmp_path):
    listener, department = archive
    findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="STUDY", AccessionNumber="ACC001",
            StudyInstanceUID=None)
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.actor, event.channel, event.action) == ("FINDSCU", AuditChannel.DICOM, "E")
    assert event.detail["level"] == "STUDY"
    assert event.detail["keys"] == "AccessionNumber=ACC001"
    assert event.detail["matches"] == 1
    assert event.patient.mrn == "PAT001"


def test_a_query_matching_several_patients_is_audited_without_a_patient(archive, tmp_path):
    listener, _ = archive
    findscu(listener, tmp_path / "rsp", "-S", QueryRetrieveLevel="STUDY", StudyInstanceUID=None)
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.detail["matches"], event.patient) == (4, None)
