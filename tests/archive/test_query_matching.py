"""archive.query: PS3.4 C.2.2.2 matching of C-FIND identifiers against the index, and the response datasets."""
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from archive import query as archive_query
from archive import status
from archive.query import PATIENT_ROOT, STUDY_ROOT, QueryError
from tests.archive.query_archive import build_department, identifier

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.DICOM_AET = "ARCHIVE"


@pytest.fixture
def department():
    return build_department()


def find(level, model=STUDY_ROOT, combine_date_time=False, **keys):
    if level == "STUDY":
        keys.setdefault("AccessionNumber", "")
    return list(archive_query.find(identifier(level, **keys), model, combine_date_time=combine_date_time))


def accessions(responses):
    return sorted(str(response.AccessionNumber) for response in responses)


def study_uids(responses):
    return {response.StudyInstanceUID for response in responses}


# Universal, single value and case

def test_an_empty_key_matches_everything_and_is_returned(department):
    responses = find("STUDY", AccessionNumber="")
    assert accessions(responses) == ["", "ACC001", "ACCX2", "ACC_2%X"]


def test_a_single_value_matches_text_exactly_and_with_case(department):
    assert accessions(find("STUDY", AccessionNumber="ACC001")) == ["ACC001"]
    assert find("STUDY", AccessionNumber="acc001") == []
    assert find("STUDY", StudyDescription="CT") == []


def test_person_names_match_ignoring_case(department):
    assert [str(r.PatientName) for r in find("STUDY", PatientName="doe^JANE")] == ["Doe^Jane"]
    assert [str(r.ReferringPhysicianName) for r in find("STUDY", ReferringPhysicianName="HOUSE^GREGORY")] == [
        "House^Gregory"]


def test_a_person_name_with_trailing_empty_components_matches_the_name(department):
    assert [str(r.PatientName) for r in find("STUDY", PatientName="Smith^John^^^")] == ["Smith^John"]


# Wildcards (PS3.4 C.2.2.2.4)

def test_a_star_matches_any_run_of_characters(department):
    assert accessions(find("STUDY", StudyDescription="CT*")) == ["ACC001", "ACCX2"]
    assert accessions(find("STUDY", StudyDescription="*KNEE")) == ["ACC_2%X"]


def test_a_question_mark_matches_exactly_one_character(department):
    assert accessions(find("STUDY", AccessionNumber="ACC00?")) == ["ACC001"]
    assert find("STUDY", AccessionNumber="ACC0?") == []


def test_wildcards_in_text_keep_their_case(department):
    assert find("STUDY", StudyDescription="ct*") == []


def test_wildcards_in_person_names_ignore_case(department):
    assert [str(r.PatientName) for r in find("STUDY", PatientName="smi*")] == ["Smith^John"]
    assert [str(r.PatientName) for r in find("STUDY", PatientName="?OE^*")] == ["Doe^Jane", "Roe^Richard"]


def test_sql_wildcard_characters_in_a_value_match_only_themselves(department):
    # '_' and '%' are LIKE wildcards: ACCX2 must not match ACC_2*, and only a value with '%' matches *%*.
    assert accessions(find("STUDY", AccessionNumber="ACC_2*")) == ["ACC_2%X"]
    assert accessions(find("STUDY", AccessionNumber="*%*")) == ["ACC_2%X"]
    assert find("STUDY", AccessionNumber="ACC[*") == []


def test_a_lone_star_matches_empty_values_too(department):
    assert len(find("STUDY", AccessionNumber="*")) == 4


# List of UID matching (PS3.4 C.2.2.2.2)

def test_a_list_of_uids_matches_any_of_them(department):
    wanted = {department["jane"].study_uid, department["john"].study_uid}
    responses = find("STUDY", StudyInstanceUID="\\".join(sorted(wanted)))
    assert study_uids(responses) == wanted


def test_wildcards_in_a_uid_key_are_refused():
    with pytest.raises(QueryError) as refusal:
        find("STUDY", StudyInstanceUID="1.2.3*")
    assert refusal.value.status == status.DATASET_MISMATCH
    assert "StudyInstanceUID" in refusal.value.comment


# Range matching (PS3.4 C.2.2.2.5)

@pytest.mark.parametrize(("study_date", "expected"), [
    ("20260115", ["ACC001"]),
    ("20260101-20260115", ["ACC001"]),
    ("20260115-", ["ACC001", "ACCX2"]),
    ("-20260101", ["ACC_2%X"]),
])
def test_dates_match_single_values_and_ranges(department, study_date, expected):
    assert accessions(find("STUDY", StudyDate=study_date)) == expected


def test_an_open_date_range_does_not_match_a_study_without_a_date(department):
    assert "" not in accessions(find("STUDY", StudyDate="-20991231"))


@pytest.mark.parametrize("bad", ["2026-01-15", "20260115-2026", "yesterday", "-"])
def test_a_malformed_date_range_is_refused(bad):
    with pytest.raises(QueryError) as refusal:
        find("STUDY", StudyDate=bad)
    assert refusal.value.status == status.DATASET_MISMATCH
    assert "StudyDate" in refusal.value.comment


def test_a_time_range_end_includes_everything_within_its_precision(department):
    # 10:15:00 is within "up to 10:15"; 23:59 and 00:30 are not.
    assert accessions(find("STUDY", StudyTime="-1015")) == ["ACC001", "ACCX2"]
    assert accessions(find("STUDY", StudyTime="1015")) == ["ACC001"]
    assert accessions(find("STUDY", StudyTime="2300-")) == ["ACC_2%X"]
    assert accessions(find("STUDY", StudyTime="101500.000001-")) == ["ACC_2%X"]


def test_date_and_time_ranges_match_separately_unless_combined(department):
    keys = {"StudyDate": "20251231-20260115", "StudyTime": "2300-1100"}
    assert find("STUDY", **keys) == []
    assert accessions(find("STUDY", combine_date_time=True, **keys)) == ["ACC001", "ACC_2%X"]


def test_combined_matching_keeps_the_end_time_on_the_last_day(department):
    keys = {"StudyDate": "20260115-20260116", "StudyTime": "1100-0000"}
    # 2026-01-15 10:15 is before the start; 2026-01-16 00:30 is after the end (00:00:59.999999).
    assert find("STUDY", combine_date_time=True, **keys) == []
    keys["StudyTime"] = "1000-0030"
    assert accessions(find("STUDY", combine_date_time=True, **keys)) == ["ACC001", "ACCX2"]


# Study-level specials, numbers

def test_modalities_in_study_match_when_any_series_matches(department):
    assert accessions(find("STUDY", ModalitiesInStudy="MR")) == ["ACC001", "ACC_2%X"]
    assert accessions(find("STUDY", ModalitiesInStudy="CR\\US")) == [""]
    assert accessions(find("STUDY", ModalitiesInStudy="C?")) == ["", "ACC001", "ACCX2"]


def test_modalities_in_study_are_returned_as_a_list(department):
    [response] = find("STUDY", AccessionNumber="ACC001", ModalitiesInStudy="")
    assert list(response.ModalitiesInStudy) == ["CT", "MR"]


def test_number_keys_match_a_single_number(department):
    responses = find("SERIES", StudyInstanceUID=department["jane"].study_uid, SeriesNumber="2", Modality="")
    assert [r.Modality for r in responses] == ["MR"]


def test_a_number_key_that_is_not_a_number_is_refused(department):
    request = identifier("SERIES", StudyInstanceUID=department["jane"].study_uid)
    request[0x00200011] = RawDataElement(Tag(0x00200011), "IS", 4, b"two ", 0, True, True)  # as received
    with pytest.raises(QueryError) as refusal:
        list(archive_query.find(request, STUDY_ROOT))
    assert "SeriesNumber" in refusal.value.comment


# Hierarchy (PS3.4 C.4.1.2.1)

def test_series_are_found_only_within_the_given_study(department):
    responses = find("SERIES", StudyInstanceUID=department["jane"].study_uid, SeriesInstanceUID="",
                     NumberOfSeriesRelatedInstances="")
    assert {r.SeriesInstanceUID: r.NumberOfSeriesRelatedInstances for r in responses} == {
        department["jane"].series_uids[0]: 2, department["jane"].series_uids[1]: 1}


def test_images_are_found_only_within_the_given_series(department):
    jane = department["jane"]
    responses = find("IMAGE", StudyInstanceUID=jane.study_uid, SeriesInstanceUID=jane.series_uids[0],
                     SOPInstanceUID="", InstanceNumber="")
    assert [(r.SOPInstanceUID, r.InstanceNumber) for r in responses] == [(jane.sop_uids[0], 1), (jane.sop_uids[1], 2)]


@pytest.mark.parametrize(("model", "level", "keys", "missing"), [
    (STUDY_ROOT, "SERIES", {}, "StudyInstanceUID"),
    (STUDY_ROOT, "IMAGE", {"StudyInstanceUID": "1.2.3"}, "SeriesInstanceUID"),
    (PATIENT_ROOT, "STUDY", {}, "PatientID"),
    (PATIENT_ROOT, "SERIES", {"PatientID": "PAT001"}, "StudyInstanceUID"),
    (STUDY_ROOT, "SERIES", {"StudyInstanceUID": "1.2.3\\1.2.4"}, "StudyInstanceUID"),
    (PATIENT_ROOT, "STUDY", {"PatientID": "PAT*"}, "PatientID"),
])
def test_a_query_below_the_top_needs_one_unique_key_for_each_level_above(model, level, keys, missing):
    with pytest.raises(QueryError) as refusal:
        find(level, model, **keys)
    assert refusal.value.status == status.DATASET_MISMATCH
    assert missing in refusal.value.comment


@pytest.mark.parametrize(("model", "level"), [(STUDY_ROOT, "PATIENT"), (STUDY_ROOT, "FRAME"), (PATIENT_ROOT, "")])
def test_a_level_outside_the_information_model_is_refused(model, level):
    with pytest.raises(QueryError) as refusal:
        find(level, model, PatientID="PAT001")
    assert refusal.value.status == status.DATASET_MISMATCH


def test_relational_queries_skip_the_unique_key_rule(department):
    query = archive_query.parse_identifier(identifier("SERIES", Modality="MR"), STUDY_ROOT, hierarchical=False)
    assert sorted(series.series_description for series in archive_query.matches(query)) == ["PD FS", "T1 SAG"]


def test_patient_keys_restrict_a_study_root_query(department):
    assert accessions(find("STUDY", PatientID="PAT001", IssuerOfPatientID="OTHER")) == [""]


def test_keys_of_lower_levels_are_returned_empty_and_do_not_restrict(department):
    responses = find("STUDY", AccessionNumber="ACC001", Modality="US")
    assert [r.Modality for r in responses] == [""]


# Patient Root PATIENT level

def test_patient_level_groups_studies_by_patient_id_and_issuer(department):
    responses = find("PATIENT", PATIENT_ROOT, PatientID="PAT001", IssuerOfPatientID="", PatientName="",
                     NumberOfPatientRelatedStudies="", NumberOfPatientRelatedSeries="",
                     NumberOfPatientRelatedInstances="")
    summary = sorted((r.IssuerOfPatientID, str(r.PatientName), r.NumberOfPatientRelatedStudies,
                      r.NumberOfPatientRelatedSeries, r.NumberOfPatientRelatedInstances) for r in responses)
    assert summary == [("", "Doe^Jane", 1, 2, 3), ("OTHER", "Roe^Richard", 1, 1, 1)]


def test_patient_level_counts_every_study_of_the_patient(department):
    from tests.archive.query_archive import ingest_study

    ingest_study([("US", 2, {})], patient_id="PAT002", IssuerOfPatientID="HOSP_B", patient_name="Smith^John",
                 study_date="20260201")
    [response] = find("PATIENT", PATIENT_ROOT, PatientName="SMITH*", NumberOfPatientRelatedStudies="",
                      NumberOfPatientRelatedInstances="")
    assert (response.NumberOfPatientRelatedStudies, response.NumberOfPatientRelatedInstances) == (2, 3)


# Responses

def test_a_response_holds_exactly_the_requested_keys(department):
    [response] = find("STUDY", AccessionNumber="ACC001", PatientName="", StudyDate="",
                      NumberOfStudyRelatedInstances="")
    assert sorted(element.keyword for element in response) == [
        "AccessionNumber", "NumberOfStudyRelatedInstances", "PatientName", "QueryRetrieveLevel",
        "RetrieveAETitle", "StudyDate"]
    assert (response.QueryRetrieveLevel, response.RetrieveAETitle) == ("STUDY", "ARCHIVE")
    assert (response.StudyDate, response.NumberOfStudyRelatedInstances) == ("20260115", 3)


def test_keys_the_archive_does_not_index_are_returned_empty(department):
    [response] = find("STUDY", AccessionNumber="ACC001", InstitutionName="ST. ELSEWHERE")
    assert response.InstitutionName == ""


def test_non_ascii_values_come_back_in_utf8(department):
    [response] = find("STUDY", PatientID="PAT003", PatientName="")
    assert response.SpecificCharacterSet == "ISO_IR 192"
    assert str(response.PatientName) == "Müller^Jürgen"


def test_a_name_query_in_utf8_finds_the_name(department):
    responses = find("STUDY", SpecificCharacterSet="ISO_IR 192", PatientName="Müller*")
    assert accessions(responses) == ["ACCX2"]


def test_image_level_answers_other_keys_from_the_stored_header(department):
    jane = department["jane"]
    [first, _] = find("IMAGE", StudyInstanceUID=jane.study_uid, SeriesInstanceUID=jane.series_uids[0],
                      InstanceNumber="1", PhotometricInterpretation="", WindowCenter="", PatientName="",
                      Rows="", SOPClassUID="", ContentLabel="") + [None]
    assert (first.PhotometricInterpretation, first.WindowCenter, first.Rows) == ("MONOCHROME2", 40, 16)
    assert str(first.PatientName) == "Doe^Jane"
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert first.ContentLabel == ""


# Retrieve selection (PS3.4 C.4.2.1.4)

def retrieve(level, model=STUDY_ROOT, **keys):
    query = archive_query.parse_retrieve_identifier(identifier(level, **keys), model)
    return sorted(instance.sop_instance_uid for instance in archive_query.retrieve_instances(query))


def test_retrieve_selects_every_instance_of_the_studies_given(department):
    assert retrieve("STUDY", StudyInstanceUID=department["jane"].study_uid) == sorted(department["jane"].sop_uids)


def test_retrieve_at_patient_level_selects_the_patient_of_that_issuer(department):
    assert retrieve("PATIENT", PATIENT_ROOT, PatientID="PAT001", IssuerOfPatientID="OTHER") == sorted(
        department["other_pat001"].sop_uids)


def test_retrieve_at_image_level_takes_a_list_of_sop_instance_uids(department):
    jane = department["jane"]
    wanted = jane.sop_uids[:2]
    assert retrieve("IMAGE", StudyInstanceUID=jane.study_uid, SeriesInstanceUID=jane.series_uids[0],
                    SOPInstanceUID="\\".join(wanted)) == sorted(wanted)


@pytest.mark.parametrize(("level", "keys"), [
    ("STUDY", {"StudyInstanceUID": "*"}),
    ("STUDY", {"StudyInstanceUID": ""}),
    ("STUDY", {"StudyInstanceUID": "1.2.3", "Modality": "CT"}),
    ("PATIENT", {"PatientID": "PAT*"}),
    ("SERIES", {"SeriesInstanceUID": "1.2.3"}),
])
def test_retrieve_refuses_identifiers_other_than_unique_keys(level, keys):
    model = PATIENT_ROOT if level == "PATIENT" else STUDY_ROOT
    with pytest.raises(QueryError) as refusal:
        retrieve(level, model, **keys)
    assert refusal.value.status == status.DATASET_MISMATCH


# Efficiency: one SQL statement per query, whatever the number of matches

@pytest.mark.parametrize(("level", "keys"), [
    ("STUDY", {"PatientName": "*", "ModalitiesInStudy": "", "NumberOfStudyRelatedInstances": ""}),
    ("SERIES", {"Modality": "", "StudyDate": "", "PatientName": ""}),
    ("IMAGE", {"SOPInstanceUID": "", "PatientName": "", "Modality": ""}),
])
def test_a_query_reads_its_matches_in_one_statement(department, django_assert_num_queries, level, keys):
    jane = department["jane"]
    unique = {"STUDY": {}, "SERIES": {"StudyInstanceUID": jane.study_uid},
              "IMAGE": {"StudyInstanceUID": jane.study_uid, "SeriesInstanceUID": jane.series_uids[0]}}[level]
    with django_assert_num_queries(1):
        responses = find(level, **unique, **keys)
    assert responses


def test_patients_without_a_patient_id_stay_apart(department):
    from tests.archive.query_archive import ingest_study

    ingest_study([("US", 1, {})], patient_id="", patient_name="Nobody^One", birth_date="19900101")
    ingest_study([("US", 1, {})], patient_id="", patient_name="Nobody^Two", birth_date="19910101")
    responses = find("PATIENT", PATIENT_ROOT, PatientName="NOBODY*", NumberOfPatientRelatedStudies="")
    assert sorted((str(r.PatientName), r.NumberOfPatientRelatedStudies) for r in responses) == [
        ("Nobody^One", 1), ("Nobody^Two", 1)]
