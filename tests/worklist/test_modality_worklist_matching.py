"""Modality Worklist C-FIND (PS3.4 K.6) from a pynetdicom SCU: which scheduled steps each matching key selects.

CT_ROOM1 and MR_ROOM2 are the department's scanners; orders are booked on them today and tomorrow."""
import pytest

from radiology.choices import AuditChannel
from tests.factories import PatientFactory
from tests.worklist.conftest import worklist_identifier
from tests.worklist.factories import ProcedureTypeFactory, StationFactory, make_order, make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mr_station(listener):
    return StationFactory(ae_title="MR_ROOM2", name="MR scanner 2", modality="MR", location="Room 2")


def accessions(found):
    return [identifier.AccessionNumber for identifier in found]


def step_query(**step):
    """Ask for the accession number, matching on keys of the Scheduled Procedure Step Sequence item."""
    return worklist_identifier(step, AccessionNumber=None)


def test_a_station_finds_the_steps_booked_on_it(matches, ct_station, mr_station, today_at):
    ct_order = make_scheduled_order(ct_station, start=today_at(9))
    make_scheduled_order(mr_station, start=today_at(9))
    assert accessions(matches(step_query(ScheduledStationAETitle="CT_ROOM1"))) == [ct_order.accession_number]


def test_modality_selects_the_steps_of_that_modality(matches, ct_station, mr_station, today_at):
    make_scheduled_order(ct_station, start=today_at(9))
    mr_order = make_scheduled_order(mr_station, start=today_at(10))
    assert accessions(matches(step_query(Modality="MR"))) == [mr_order.accession_number]


def test_steps_come_earliest_first(matches, ct_station, today_at):
    late = make_scheduled_order(ct_station, start=today_at(15))
    early = make_scheduled_order(ct_station, start=today_at(8))
    assert accessions(matches(step_query(ScheduledStationAETitle="CT_ROOM1"))) == [
        early.accession_number, late.accession_number]


def test_start_date_selects_one_local_day(matches, ct_station, today_at):
    today = make_scheduled_order(ct_station, start=today_at(23, 30))
    make_scheduled_order(ct_station, start=today_at(0, 30, days=1))
    date = today_at(12).strftime("%Y%m%d")
    assert accessions(matches(step_query(ScheduledProcedureStepStartDate=date))) == [today.accession_number]


def test_start_date_range_covers_whole_days(matches, ct_station, today_at):
    yesterday = make_scheduled_order(ct_station, start=today_at(8, days=-1))
    tomorrow = make_scheduled_order(ct_station, start=today_at(22, days=1))
    make_scheduled_order(ct_station, start=today_at(9, days=2))
    date_range = f"{today_at(0, days=-1):%Y%m%d}-{today_at(0, days=1):%Y%m%d}"
    assert accessions(matches(step_query(ScheduledProcedureStepStartDate=date_range))) == [
        yesterday.accession_number, tomorrow.accession_number]


def test_an_open_ended_date_range_finds_from_that_day_on(matches, ct_station, today_at):
    make_scheduled_order(ct_station, start=today_at(8, days=-1))
    later = make_scheduled_order(ct_station, start=today_at(8, days=3))
    assert accessions(matches(step_query(ScheduledProcedureStepStartDate=f"{today_at(0):%Y%m%d}-"))) == [
        later.accession_number]


def test_date_and_time_range_together_are_one_period(matches, ct_station, today_at):
    make_scheduled_order(ct_station, start=today_at(7, 30))
    morning = make_scheduled_order(ct_station, start=today_at(9))
    noon = make_scheduled_order(ct_station, start=today_at(12))
    make_scheduled_order(StationFactory(ae_title="CT_ROOM5", modality="CT"), start=today_at(12, 1))
    found = matches(step_query(ScheduledProcedureStepStartDate=f"{today_at(0):%Y%m%d}",
                               ScheduledProcedureStepStartTime="0800-1200"))
    # The end of a range is inclusive to its precision: 1200 includes 12:00:59.
    assert accessions(found) == [morning.accession_number, noon.accession_number]


def test_a_date_range_with_a_time_range_runs_from_the_first_day_and_time_to_the_last(
        matches, ct_station, today_at):
    make_scheduled_order(ct_station, start=today_at(19, days=-1))
    evening = make_scheduled_order(ct_station, start=today_at(21, days=-1))
    night = make_scheduled_order(ct_station, start=today_at(3))
    make_scheduled_order(ct_station, start=today_at(9))
    found = matches(step_query(
        ScheduledProcedureStepStartDate=f"{today_at(0, days=-1):%Y%m%d}-{today_at(0):%Y%m%d}",
        ScheduledProcedureStepStartTime="2000-0800"))
    assert accessions(found) == [evening.accession_number, night.accession_number]


def test_a_time_range_alone_matches_that_time_of_any_day(matches, ct_station, today_at):
    today = make_scheduled_order(ct_station, start=today_at(10))
    tomorrow = make_scheduled_order(ct_station, start=today_at(10, 30, days=1))
    make_scheduled_order(ct_station, start=today_at(14, days=1))
    assert accessions(matches(step_query(ScheduledProcedureStepStartTime="1000-1100"))) == [
        today.accession_number, tomorrow.accession_number]


def test_dates_are_the_stations_local_dates(matches, ct_station, settings, today_at):
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in November: 01:00 local is the previous day in UTC
    order = make_scheduled_order(ct_station, start=today_at(1))
    assert accessions(matches(step_query(ScheduledProcedureStepStartDate=f"{today_at(0):%Y%m%d}"))) == [
        order.accession_number]


def test_patient_name_matches_with_wildcards_ignoring_case(matches, ct_station, today_at):
    jane = make_scheduled_order(ct_station, start=today_at(9),
                                patient=PatientFactory(family_name="Doe", given_name="Jane"))
    make_scheduled_order(ct_station, start=today_at(10), patient=PatientFactory(family_name="Dodd", given_name="Jo"))
    assert accessions(matches(worklist_identifier(PatientName="DOE*", AccessionNumber=None))) == [
        jane.accession_number]
    assert accessions(matches(worklist_identifier(PatientName="do?^jane", AccessionNumber=None))) == [
        jane.accession_number]


def test_patient_name_matches_a_name_without_given_name(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9),
                                 patient=PatientFactory(family_name="Nakamura", given_name=""))
    assert accessions(matches(worklist_identifier(PatientName="NAKAMURA", AccessionNumber=None))) == [
        order.accession_number]


def test_patient_id_selects_the_patients_steps(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9), patient=PatientFactory(mrn="MRN-77"))
    make_scheduled_order(ct_station, start=today_at(10))
    assert accessions(matches(worklist_identifier(PatientID="MRN-77", AccessionNumber=None))) == [
        order.accession_number]


def test_accession_number_selects_its_order(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9))
    make_scheduled_order(ct_station, start=today_at(10))
    found = matches(worklist_identifier(AccessionNumber=order.accession_number, PatientID=None))
    assert [(identifier.AccessionNumber, identifier.PatientID) for identifier in found] == [
        (order.accession_number, order.patient.mrn)]


def test_requested_procedure_id_selects_its_order(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9), requested_procedure_id="RP-4711")
    make_scheduled_order(ct_station, start=today_at(10))
    assert accessions(matches(worklist_identifier(RequestedProcedureID="RP-4711", AccessionNumber=None))) == [
        order.accession_number]


def test_scheduled_procedure_step_id_selects_its_step(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9))
    make_scheduled_order(ct_station, start=today_at(10))
    step_id = order.steps.get().step_id
    assert accessions(matches(step_query(ScheduledProcedureStepID=step_id))) == [order.accession_number]


def test_scheduled_procedure_step_status_matches_the_steps_status(matches, ct_station, today_at):
    scheduled = make_scheduled_order(ct_station, start=today_at(9))
    arrived = make_scheduled_order(ct_station, start=today_at(10))
    orders.change_status(arrived, OrderStatus.ARRIVED, actor="wilhelm", channel=AuditChannel.WEB)
    assert accessions(matches(step_query(ScheduledProcedureStepStatus="ARRIVED"))) == [arrived.accession_number]
    assert accessions(matches(step_query(ScheduledProcedureStepStatus="SCHEDULED"))) == [
        scheduled.accession_number]


def test_several_values_match_any_of_them(matches, ct_station, mr_station, today_at):
    ct_order = make_scheduled_order(ct_station, start=today_at(9))
    mr_order = make_scheduled_order(mr_station, start=today_at(10))
    make_scheduled_order(StationFactory(ae_title="US_ROOM4", modality="US"), start=today_at(11))
    assert accessions(matches(step_query(Modality="CT\\MR"))) == [ct_order.accession_number,
                                                                  mr_order.accession_number]


def test_keys_combine_station_and_date(matches, ct_station, mr_station, today_at):
    wanted = make_scheduled_order(ct_station, start=today_at(9))
    make_scheduled_order(ct_station, start=today_at(9, days=1))
    make_scheduled_order(mr_station, start=today_at(9))
    found = matches(step_query(ScheduledStationAETitle="CT_ROOM1",
                               ScheduledProcedureStepStartDate=f"{today_at(0):%Y%m%d}"))
    assert accessions(found) == [wanted.accession_number]


def test_a_cancelled_order_disappears_from_the_worklist_at_once(matches, ct_station, today_at):
    kept = make_scheduled_order(ct_station, start=today_at(9))
    cancelled = make_scheduled_order(ct_station, start=today_at(10))
    assert len(matches(step_query(ScheduledStationAETitle="CT_ROOM1"))) == 2
    orders.cancel_order(cancelled, reason="patient declined", actor="ehr", channel=AuditChannel.HL7)
    assert accessions(matches(step_query(ScheduledStationAETitle="CT_ROOM1"))) == [kept.accession_number]


def test_a_started_procedure_is_no_longer_offered(matches, ct_station, today_at):
    started = make_scheduled_order(ct_station, start=today_at(9))
    orders.change_status(started, OrderStatus.IN_PROGRESS, actor="CT_ROOM1", channel=AuditChannel.DICOM)
    assert matches(step_query(ScheduledStationAETitle="CT_ROOM1")) == []


def test_an_order_not_yet_scheduled_is_not_offered(matches, ct_station):
    make_order(procedure=ProcedureTypeFactory(modality="CT"))
    assert matches(step_query(Modality="CT")) == []


def test_a_performing_physician_asked_for_matches_nothing_as_none_is_recorded(matches, ct_station, today_at):
    make_scheduled_order(ct_station, start=today_at(9))
    assert matches(step_query(ScheduledPerformingPhysicianName="Smith*")) == []
    assert len(matches(step_query(ScheduledPerformingPhysicianName="*"))) == 1


def test_patient_name_with_punctuation_or_lower_case_letters_still_matches(matches, ct_station, today_at):
    obrien = make_scheduled_order(ct_station, start=today_at(9),
                                  patient=PatientFactory(family_name="O'Brien", given_name="Liam"))
    mcdonald = make_scheduled_order(ct_station, start=today_at(10),
                                    patient=PatientFactory(family_name="McDonald", given_name="Ann"))
    assert accessions(matches(worklist_identifier(PatientName="o'br*", AccessionNumber=None))) == [
        obrien.accession_number]
    assert accessions(matches(worklist_identifier(PatientName="MCDONALD^ANN", AccessionNumber=None))) == [
        mcdonald.accession_number]


def worklist_find_event(identifier, calling_ae="CT_ROOM1"):
    """A C-FIND event as pynetdicom hands it to the worklist's handler, on an Explicit VR Little Endian context."""
    from types import SimpleNamespace

    from pydicom.uid import ExplicitVRLittleEndian

    requestor = SimpleNamespace(ae_title=calling_ae, address="127.0.0.1")
    return SimpleNamespace(identifier=identifier, is_cancelled=False, assoc=SimpleNamespace(requestor=requestor),
                           context=SimpleNamespace(transfer_syntax=ExplicitVRLittleEndian))


def test_a_worklist_query_costs_the_same_sql_queries_however_many_steps_match(ct_station, today_at):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from worklist.dimse.modality_worklist import handle_find

    def sql_queries(identifier):
        with CaptureQueriesContext(connection) as captured:
            responses = list(handle_find(worklist_find_event(identifier)))
        return len(captured), len(responses)

    # Everything a modality asks for: patient, order, procedure, station and the procedure's code.
    def query(**step):
        return worklist_identifier(
            {"ScheduledProtocolCodeSequence": [], **dict.fromkeys(
                ["Modality", "ScheduledStationName", "ScheduledProcedureStepLocation",
                 "ScheduledProcedureStepStartDate"]), **step},
            PatientName=None, PatientID=None, AccessionNumber=None, RequestedProcedureDescription=None,
            RequestedProcedureCodeSequence=None)

    make_scheduled_order(ct_station, start=today_at(8))
    one_match = sql_queries(query(ScheduledProcedureStepStartDate=f"{today_at(0):%Y%m%d}"))
    for hour in range(9, 15):
        make_scheduled_order(ct_station, start=today_at(hour, days=1))
    seven_matches = sql_queries(query())
    assert (one_match[1], seven_matches[1]) == (1, 7)  # pending responses (pynetdicom adds the final success)
    assert seven_matches[0] == one_match[0] > 0, (one_match, seven_matches)
