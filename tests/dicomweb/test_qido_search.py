"""QIDO-RS searches (PS3.18 10.6) with dicomweb-client as the other side: studies, series and instances,
matched by the same rules as C-FIND and answered as DICOM JSON (PS3.18 F.2)."""
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"


@pytest.fixture
def dicomweb(live_server, transactional_db, radiologist):
    token = Token.objects.create(user=radiologist).key
    return DICOMwebClient(f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token}"})


@pytest.fixture
def archive(transactional_db):
    """Jane Doe's CT head (two series, three instances) and John Smith's MR knee (one instance)."""
    head, knee = generate_uid(), generate_uid()
    axial, coronal, sagittal = generate_uid(), generate_uid(), generate_uid()
    for series_uid, number, instance_number in [(axial, 1, 1), (axial, 1, 2), (coronal, 2, 1)]:
        ingest_dataset(make_dataset(study_uid=head, series_uid=series_uid, series_number=number,
                                    instance_number=instance_number, accession_number="ACC-HEAD"))
    ingest_dataset(make_dataset(study_uid=knee, series_uid=sagittal, patient_id="PAT002", patient_name="Smith^John",
                                sex="M", modality="MR", study_date="20260301", accession_number="ACC-KNEE",
                                study_description="MR KNEE", referring_physician=""))
    return {"head": head, "knee": knee, "axial": axial, "coronal": coronal, "sagittal": sagittal}


def values(results, tag):
    return [result[tag].get("Value", [None])[0] for result in results]


def test_study_search_matches_a_patient_name_wildcard_ignoring_case(dicomweb, archive):
    results = dicomweb.search_for_studies(search_filters={"PatientName": "doe*"})

    assert values(results, STUDY_UID) == [archive["head"]]
    assert results[0]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}


def test_study_results_carry_the_default_attributes_as_dicom_json(dicomweb, archive):
    [knee] = dicomweb.search_for_studies(search_filters={"AccessionNumber": "ACC-KNEE"})

    assert knee["00201206"] == {"vr": "IS", "Value": [1]}  # NumberOfStudyRelatedSeries
    assert knee["00201208"] == {"vr": "IS", "Value": [1]}  # NumberOfStudyRelatedInstances
    assert knee["00080061"] == {"vr": "CS", "Value": ["MR"]}  # ModalitiesInStudy
    assert knee["00080090"] == {"vr": "PN"}  # an empty ReferringPhysicianName has no Value
    assert knee["00080056"] == {"vr": "CS", "Value": ["ONLINE"]}
    # dicomweb-client sends its Host header without the port; the URL is absolute against that host.
    assert knee["00081190"] == {"vr": "UR", "Value": [f"http://localhost/dicomweb/studies/{archive['knee']}"]}
    for keyword_tag in ["00080020", "00080030", "00100020", "00100030", "00100040", "00200010"]:
        assert keyword_tag in knee
    assert "00080052" not in knee and "00080054" not in knee  # no DIMSE query control attributes


def test_study_search_by_date_range_and_modality(dicomweb, archive):
    results = dicomweb.search_for_studies(search_filters={"StudyDate": "20260201-", "ModalitiesInStudy": "MR"})

    assert values(results, STUDY_UID) == [archive["knee"]]


def test_includefield_adds_attributes_by_keyword_or_tag(dicomweb, archive):
    [head] = dicomweb.search_for_studies(search_filters={"PatientID": "PAT001"},
                                         fields=["StudyDescription", "00100010"])

    assert head["00081030"] == {"vr": "LO", "Value": ["CT HEAD"]}


def test_limit_and_offset_page_through_the_studies(dicomweb, archive):
    first = dicomweb.search_for_studies(limit=1)
    second = dicomweb.search_for_studies(limit=1, offset=1)
    beyond = dicomweb.search_for_studies(limit=1, offset=2)

    # Latest study first: the knee (March) before the head (January).
    assert values(first + second, STUDY_UID) == [archive["knee"], archive["head"]]
    assert beyond == []


def test_series_of_a_study_are_listed_in_series_number_order(dicomweb, archive):
    results = dicomweb.search_for_series(study_instance_uid=archive["head"])

    assert values(results, SERIES_UID) == [archive["axial"], archive["coronal"]]
    assert values(results, "00201209") == [2, 1]  # NumberOfSeriesRelatedInstances
    assert values(results, "00080060") == ["CT", "CT"]


def test_all_series_search_matches_study_attributes_too(dicomweb, archive):
    results = dicomweb.search_for_series(search_filters={"PatientID": "PAT002", "Modality": "MR"})

    assert values(results, SERIES_UID) == [archive["sagittal"]]
    assert values(results, STUDY_UID) == [archive["knee"]]  # study attributes come with every series


def test_instances_of_a_series_carry_image_attributes_from_the_index_and_header(dicomweb, archive):
    results = dicomweb.search_for_instances(study_instance_uid=archive["head"],
                                            series_instance_uid=archive["axial"])

    assert values(results, "00200013") == [1, 2]  # InstanceNumber
    assert values(results, "00280010") == [16, 16]  # Rows
    assert values(results, "00280100") == [16, 16]  # BitsAllocated, read from the stored header
    assert all(result["00081190"]["Value"][0].endswith(result[SOP_UID]["Value"][0]) for result in results)


def test_instances_of_a_study_and_of_the_whole_archive(dicomweb, archive):
    of_study = dicomweb.search_for_instances(study_instance_uid=archive["head"], search_filters={"SeriesNumber": "2"})
    everywhere = dicomweb.search_for_instances(search_filters={"PatientName": "Smith^John"})

    assert values(of_study, SERIES_UID) == [archive["coronal"]]
    assert values(everywhere, STUDY_UID) == [archive["knee"]]


def test_includefield_all_returns_the_stored_header_of_instances(dicomweb, archive):
    [instance] = dicomweb.search_for_instances(search_filters={"PatientID": "PAT002"}, fields=["all"])

    assert instance["00281050"] == {"vr": "DS", "Value": [40.0]}  # WindowCenter, only in the header
    assert "7FE00010" not in instance


def test_a_search_without_matches_is_an_empty_list(dicomweb, archive):
    assert dicomweb.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []


def test_each_search_is_audited_with_the_user(dicomweb, archive, radiologist):
    dicomweb.search_for_studies(search_filters={"PatientID": "PAT002"})

    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.channel, event.user, event.action) == (AuditChannel.DICOMWEB, radiologist, "E")
    assert event.detail["matches"] == 1
    assert event.patient.studies.get().study_instance_uid == archive["knee"]


def test_the_study_list_search_of_an_ohif_viewer(dicomweb, archive):
    # OHIF's study list: a patient name wildcard, a date range, fuzzymatching=false, limit 101, and
    # StudyDescription (0008,1030) and Modality (0008,0060) by tag.
    studies = dicomweb.search_for_studies(
        search_filters={"PatientName": "*Jane*", "StudyDate": "20260101-20261231"},
        fuzzymatching=False, limit=101, offset=0, fields=["00081030", "00080060"])
    series = dicomweb.search_for_series(study_instance_uid=studies[0][STUDY_UID]["Value"][0])

    assert values(studies, STUDY_UID) == [archive["head"]]
    assert studies[0]["00081030"] == {"vr": "LO", "Value": ["CT HEAD"]}
    assert studies[0]["00080060"] == {"vr": "CS"}  # a series attribute: empty at study level
    assert values(series, SERIES_UID) == [archive["axial"], archive["coronal"]]
