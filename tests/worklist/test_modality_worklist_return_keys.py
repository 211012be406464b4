"""Modality Worklist C-FIND responses carry the PS3.4 K.6 return keys the modality asked for, and only those."""
import datetime

import pytest
from pydicom.dataset import Dataset

from tests.factories import PatientFactory, UserFactory
from tests.worklist.conftest import worklist_identifier
from tests.worklist.factories import ProcedureTypeFactory, make_scheduled_order
from worklist.choices import Priority

pytestmark = pytest.mark.django_db(transaction=True)

STEP_KEYS = ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
             "ScheduledProcedureStepStartTime", "ScheduledPerformingPhysicianName",
             "ScheduledProcedureStepDescription", "ScheduledProcedureStepID", "ScheduledProcedureStepLocation",
             "ScheduledProcedureStepStatus")


@pytest.fixture
def chest_ct(ct_station, today_at):
    """Jane Doe's urgent chest CT, booked on CT_ROOM1 today at 09:30, referred by Dr Gregory House."""
    return make_scheduled_order(
        ct_station, start=today_at(9, 30), priority=Priority.URGENT, reason="suspected pulmonary embolism",
        procedure=ProcedureTypeFactory(code="CTCHEST", name="CT chest with contrast", modality="CT"),
        referring_physician=UserFactory(first_name="Gregory", last_name="House"),
        patient=PatientFactory(mrn="PAT001", issuer="HOSP", family_name="Doe", given_name="Jane",
                               birth_date=datetime.date(1980, 5, 17), sex="F"))


def full_identifier():
    step = {keyword: None for keyword in STEP_KEYS}
    identifier = worklist_identifier(
        step, PatientName=None, PatientID=None, IssuerOfPatientID=None, PatientBirthDate=None, PatientSex=None,
        AccessionNumber=None, ReferringPhysicianName=None, RequestedProcedureID=None,
        RequestedProcedureDescription=None, RequestedProcedurePriority=None, StudyInstanceUID=None,
        ReasonForTheRequestedProcedure=None)
    identifier.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence = []
    identifier.RequestedProcedureCodeSequence = []
    return identifier


def test_the_response_carries_the_requested_procedure_and_patient(matches, chest_ct):
    [found] = matches(full_identifier())
    assert str(found.PatientName) == "Doe^Jane"
    assert (found.PatientID, found.IssuerOfPatientID, found.PatientBirthDate, found.PatientSex) == (
        "PAT001", "HOSP", "19800517", "F")
    assert found.AccessionNumber == chest_ct.accession_number
    assert str(found.ReferringPhysicianName) == "House^Gregory"
    assert found.RequestedProcedureID == chest_ct.requested_procedure_id
    assert found.RequestedProcedureDescription == "CT chest with contrast"
    assert found.RequestedProcedurePriority == "HIGH"
    assert found.StudyInstanceUID == chest_ct.study_instance_uid
    assert found.ReasonForTheRequestedProcedure == "suspected pulmonary embolism"
    [code] = found.RequestedProcedureCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "CTCHEST", "99LOCAL", "CT chest with contrast")


def test_the_response_carries_the_scheduled_procedure_step(matches, chest_ct, today_at):
    [found] = matches(full_identifier())
    [step] = found.ScheduledProcedureStepSequence
    assert (step.Modality, step.ScheduledStationAETitle) == ("CT", "CT_ROOM1")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        f"{today_at(0):%Y%m%d}", "093000")
    assert step.ScheduledProcedureStepDescription == "CT chest with contrast"
    assert step.ScheduledProcedureStepID == chest_ct.steps.get().step_id
    assert step.ScheduledProcedureStepLocation == "Room 1"
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledPerformingPhysicianName == ""  # type 2: present, empty (none recorded)
    [protocol] = step.ScheduledProtocolCodeSequence
    assert (protocol.CodeValue, protocol.CodeMeaning) == ("CTCHEST", "CT chest with contrast")


def test_only_the_requested_keys_are_returned(matches, chest_ct):
    [found] = matches(worklist_identifier({"ScheduledProcedureStepStartDate": None},
                                          PatientID=None, AccessionNumber=chest_ct.accession_number))
    assert sorted(element.keyword for element in found) == [
        "AccessionNumber", "PatientID", "ScheduledProcedureStepSequence"]
    assert [element.keyword for element in found.ScheduledProcedureStepSequence[0]] == [
        "ScheduledProcedureStepStartDate"]


def test_an_empty_step_sequence_returns_all_its_keys(matches, chest_ct):
    identifier = worklist_identifier(AccessionNumber=None)
    identifier.ScheduledProcedureStepSequence = []
    [found] = matches(identifier)
    keywords = {element.keyword for element in found.ScheduledProcedureStepSequence[0]}
    assert set(STEP_KEYS) | {"ScheduledProtocolCodeSequence", "ScheduledStationName"} == keywords


def test_keys_the_worklist_does_not_hold_come_back_empty(matches, chest_ct):
    identifier = worklist_identifier(AccessionNumber=None, PatientWeight=None, AdmissionID=None)
    identifier.ReferencedStudySequence = []
    [found] = matches(identifier)
    assert (found.PatientWeight, found.AdmissionID) == (None, "")
    assert len(found.ReferencedStudySequence) == 0


def test_times_are_given_in_the_stations_time_zone(matches, ct_station, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    order = make_scheduled_order(ct_station, start=datetime.datetime(2026, 11, 28, 23, 15, tzinfo=datetime.UTC))
    [found] = matches(worklist_identifier({"ScheduledProcedureStepStartDate": None,
                                           "ScheduledProcedureStepStartTime": None},
                                          AccessionNumber=order.accession_number))
    step = found.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20261129", "001500")


def test_stat_orders_have_stat_priority(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9), priority=Priority.STAT)
    [found] = matches(worklist_identifier(AccessionNumber=order.accession_number, RequestedProcedurePriority=None))
    assert found.RequestedProcedurePriority == "STAT"


def test_non_ascii_names_are_answered_in_utf8(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9),
                                 patient=PatientFactory(family_name="Müller", given_name="Jürgen"))
    [found] = matches(worklist_identifier(AccessionNumber=order.accession_number, PatientName=None))
    assert found.SpecificCharacterSet == "ISO_IR 192"
    assert str(found.PatientName) == "Müller^Jürgen"


def test_a_utf8_query_finds_a_non_ascii_name(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9),
                                 patient=PatientFactory(family_name="Øster", given_name="Åse"))
    identifier = worklist_identifier(PatientName="Øster*", AccessionNumber=None)
    identifier.SpecificCharacterSet = "ISO_IR 192"
    assert [found.AccessionNumber for found in matches(identifier)] == [order.accession_number]


def test_ascii_answers_repeat_the_queries_character_set(matches, chest_ct):
    identifier = Dataset()
    identifier.SpecificCharacterSet = "ISO_IR 100"
    identifier.AccessionNumber = chest_ct.accession_number
    [found] = matches(identifier)
    assert found.SpecificCharacterSet == "ISO_IR 100"
