"""ORM^O01 from the EHR over MLLP: NW creates the order, CA cancels it, XO changes it, SC moves its status, each
through the order state machine; the fields follow DESIGN.md section 4."""
import datetime

import pytest
from django.utils import timezone

from radiology.choices import Role
from tests.factories import PatientFactory, UserFactory
from tests.worklist.factories import ProcedureTypeFactory, make_order
from tests.worklist.hl7_fixtures import (  # noqa: F401 (fixtures)
    ack_code, ehr, err_field, hl7_listener, module_hl7_listener, orm,
)
from worklist.choices import OrderStatus, Priority, StepStatus
from worklist.models import Order
from worklist.patient_merge import merge_patients

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def curie():
    """Marie Curie, registered by the EHR (MRN100 of GENHOSP)."""
    return PatientFactory(mrn="MRN100", issuer="GENHOSP", family_name="Curie", given_name="Marie")


@pytest.fixture
def ct_head():
    return ProcedureTypeFactory(code="CTHEAD", name="CT HEAD", modality="CT", body_part="HEAD")


def test_nw_creates_a_requested_order_with_the_ehr_numbers_procedure_and_patient(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL1", filler="F1", procedure="CTHEAD", accession="ACC77",
                       requested_procedure_id="RP77", priority="S", reason="sudden headache"))

    assert ack_code(ack) == "AA", ack
    order = Order.objects.get(placer_order_number="PL1")
    assert (order.patient, order.procedure, order.filler_order_number, order.accession_number) == (
        curie, ct_head, "F1", "ACC77")
    assert (order.requested_procedure_id, order.priority, order.reason, order.status) == (
        "RP77", Priority.STAT, "sudden headache", OrderStatus.REQUESTED)
    assert order.status_changes.get().channel == "hl7"


def test_nw_without_obr_18_gets_a_generated_accession_number(ehr, curie, ct_head):
    assert ack_code(ehr.send(orm("NW", placer="PL2", accession=""))) == "AA"

    order = Order.objects.get(placer_order_number="PL2")
    assert order.accession_number
    assert order.filler_order_number == order.accession_number


def test_nw_with_a_start_time_in_tq1_is_scheduled_with_its_step_id(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL3", start="202612011030+0000", step_id="SPS3"))

    assert ack_code(ack) == "AA", ack
    order = Order.objects.get(placer_order_number="PL3")
    assert order.status == OrderStatus.SCHEDULED
    step = order.steps.get()
    assert (step.step_id, step.start, step.station, step.modality) == (
        "SPS3", datetime.datetime(2026, 12, 1, 10, 30, tzinfo=datetime.timezone.utc), None, "CT")


def test_priority_and_start_time_are_read_from_orc_7_when_there_is_no_tq1(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL4", priority="A", start="202612011100+0000", tq1=False))

    assert ack_code(ack) == "AA", ack
    order = Order.objects.get(placer_order_number="PL4")
    assert (order.priority, order.status) == (Priority.URGENT, OrderStatus.SCHEDULED)
    assert order.steps.get().start == datetime.datetime(2026, 12, 1, 11, 0, tzinfo=datetime.timezone.utc)


def test_pv1_8_naming_a_platform_user_makes_that_user_the_referring_physician(ehr, curie, ct_head):
    gregory = UserFactory(username="gregory", role=Role.CLINICIAN)

    assert ack_code(ehr.send(orm("NW", placer="PL5", referring="gregory^House^Gregory^M"))) == "AA"

    order = Order.objects.get(placer_order_number="PL5")
    assert (order.referring_physician, order.referring_physician_name) == (gregory, "House^Gregory^M")


def test_pv1_8_naming_nobody_known_keeps_the_name_only(ehr, curie, ct_head):
    assert ack_code(ehr.send(orm("NW", placer="PL6", referring="X999^Wilson^James"))) == "AA"

    order = Order.objects.get(placer_order_number="PL6")
    assert (order.referring_physician, order.referring_physician_name) == (None, "Wilson^James")


def test_ca_cancels_the_order_found_by_its_placer_number(ehr, curie, ct_head):
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL7")

    ack = ehr.send(orm("CA", placer="PL7", reason="patient declined"))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.status_changes.last().reason == "patient declined"


def test_ca_finds_the_order_by_filler_number_when_there_is_no_placer_number(ehr, curie, ct_head):
    order = make_order(patient=curie, procedure=ct_head)

    assert ack_code(ehr.send(orm("CA", placer="", filler=order.filler_order_number))) == "AA"

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_xo_changes_procedure_priority_and_reason(ehr, curie, ct_head):
    ct_chest = ProcedureTypeFactory(code="CTCHEST", modality="CT", body_part="CHEST")
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL8")

    ack = ehr.send(orm("XO", placer="PL8", procedure="CTCHEST", priority="S", reason="haemoptysis"))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    assert (order.procedure, order.priority, order.reason) == (ct_chest, Priority.STAT, "haemoptysis")


def test_xo_with_a_new_start_time_reschedules_the_step(ehr, curie, ct_head):
    start = timezone.now().replace(microsecond=0) + datetime.timedelta(days=2)
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL9", start=start)

    ack = ehr.send(orm("XO", placer="PL9", start="202612030900+0000"))

    assert ack_code(ack) == "AA", ack
    assert order.steps.get().start == datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.timezone.utc)


def test_xo_repeating_the_order_unchanged_is_accepted_and_changes_nothing(ehr, curie, ct_head):
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL15", priority=Priority.ROUTINE)
    updated_at = order.updated_at

    ack = ehr.send(orm("XO", placer="PL15", procedure="CTHEAD", priority="R", referring=""))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    assert order.updated_at == updated_at


def test_an_order_moved_by_a_merge_is_still_found_under_the_merged_mrn(ehr, curie, ct_head):
    duplicate = PatientFactory(mrn="MRN199", issuer="GENHOSP")
    order = make_order(patient=duplicate, procedure=ct_head, placer_order_number="PL16")
    merge_patients(survivor=curie, merged=duplicate, actor="test", channel="hl7")

    assert ack_code(ehr.send(orm("CA", mrn="MRN199", placer="PL16"))) == "AA"

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_ca_naming_another_patient_than_the_orders_is_refused(ehr, curie, ct_head):
    PatientFactory(mrn="MRN300", issuer="GENHOSP")
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL17")

    ack = ehr.send(orm("CA", mrn="MRN300", placer="PL17"))

    assert ack_code(ack) == "AE"
    assert f"order {order.accession_number} belongs to patient MRN MRN100, not MRN300" in err_field(ack, 8)


@pytest.mark.parametrize("code, status", [("IP", OrderStatus.IN_PROGRESS), ("CM", OrderStatus.COMPLETED),
                                          ("CA", OrderStatus.CANCELLED)])
def test_sc_moves_a_scheduled_order_to_the_status_in_orc_5(ehr, curie, ct_head, code, status):
    order = make_order(patient=curie, procedure=ct_head, placer_order_number=f"PL10{code}",
                       start=timezone.now() + datetime.timedelta(hours=1))

    ack = ehr.send(orm("SC", placer=f"PL10{code}", order_status=code))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    assert order.status == status


def test_sc_scheduled_with_a_start_time_schedules_a_requested_order(ehr, curie, ct_head):
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL11")

    ack = ehr.send(orm("SC", placer="PL11", order_status="SC", start="202612040800+0000"))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED
    assert order.steps.get().status == StepStatus.SCHEDULED


def test_sc_to_a_status_the_state_machine_forbids_is_an_error_with_its_reason(ehr, curie, ct_head):
    order = make_order(patient=curie, procedure=ct_head, placer_order_number="PL12")  # requested

    ack = ehr.send(orm("SC", placer="PL12", order_status="IP"))

    assert ack_code(ack) == "AE"
    assert "cannot become in progress" in err_field(ack, 8)
    assert err_field(ack, 4) == "E"
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_an_order_status_outside_table_0038_is_an_error_naming_orc_5(ehr, curie, ct_head):
    make_order(patient=curie, procedure=ct_head, placer_order_number="PL13")

    ack = ehr.send(orm("SC", placer="PL13", order_status="HD"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 3), "ORC-5" in err_field(ack, 8)) == ("103", True)


def test_ca_for_an_unknown_order_is_an_error(ehr, curie, ct_head):
    ack = ehr.send(orm("CA", placer="NOSUCH"))

    assert ack_code(ack) == "AE"
    assert err_field(ack, 3) == "204"
    assert "no order with placer NOSUCH" in err_field(ack, 8)


def test_a_second_nw_with_a_placer_number_already_used_is_refused(ehr, curie, ct_head):
    make_order(patient=curie, procedure=ct_head, placer_order_number="PL14")

    ack = ehr.send(orm("NW", placer="PL14"))

    assert ack_code(ack) == "AE"
    assert err_field(ack, 3) == "205"
    assert Order.objects.filter(placer_order_number="PL14").count() == 1
