"""Modality Worklist against dcmtk's `findscu -W`, as a modality's worklist client asks for it."""
import pytest

from tests.factories import PatientFactory
from tests.worklist.factories import StationFactory, make_scheduled_order

pytestmark = pytest.mark.django_db(transaction=True)

# The keys a modality typically asks for: its own AE title and today, plus what it shows and puts in images.
RETURN_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
               "StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription",
               "(0040,0100)[0].Modality", "(0040,0100)[0].ScheduledProcedureStepID",
               "(0040,0100)[0].ScheduledProcedureStepStartTime")


def test_findscu_gets_todays_worklist_of_its_station(findscu_worklist, ct_station, today_at):
    jane = make_scheduled_order(ct_station, start=today_at(9),
                                patient=PatientFactory(family_name="Doe", given_name="Jane", mrn="PAT001"))
    make_scheduled_order(ct_station, start=today_at(9, days=1))
    make_scheduled_order(StationFactory(ae_title="MR_ROOM2", modality="MR"), start=today_at(9))
    result, responses = findscu_worklist(
        "(0040,0100)[0].ScheduledStationAETitle=CT_ROOM1",
        f"(0040,0100)[0].ScheduledProcedureStepStartDate={today_at(0):%Y%m%d}", *RETURN_KEYS)
    assert result.returncode == 0, result.stderr
    [found] = responses
    assert (str(found.PatientName), found.PatientID, found.AccessionNumber, found.StudyInstanceUID) == (
        "Doe^Jane", "PAT001", jane.accession_number, jane.study_instance_uid)
    step = found.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledProcedureStepID, step.ScheduledProcedureStepStartTime) == (
        "CT", jane.steps.get().step_id, "090000")


def test_findscu_finds_a_patient_by_name_prefix(findscu_worklist, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9),
                                 patient=PatientFactory(family_name="Fischer", given_name="Anna"))
    make_scheduled_order(ct_station, start=today_at(10), patient=PatientFactory(family_name="Schmidt"))
    result, responses = findscu_worklist("PatientName=fisch*", "AccessionNumber")
    assert result.returncode == 0, result.stderr
    assert [found.AccessionNumber for found in responses] == [order.accession_number]


def test_findscu_with_an_unknown_ae_title_is_rejected(findscu_worklist, ct_station):
    result, responses = findscu_worklist("AccessionNumber", calling_ae="NOT_A_STATION")
    assert responses == []
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr


def test_findscu_gets_a_failure_status_for_a_malformed_date(findscu_worklist, ct_station):
    result, responses = findscu_worklist("(0040,0100)[0].ScheduledProcedureStepStartDate=28.11.2026",
                                         "AccessionNumber", options=("-d",))
    assert responses == []
    assert "DIMSE Status                  : 0xa900" in result.stderr
