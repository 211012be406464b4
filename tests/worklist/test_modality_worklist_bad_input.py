"""A malformed worklist query gets the standard C-FIND failure (0xA900 identifier does not match SOP class,
0xC000 cannot understand) with an Error Comment, and is audited; a cancelled query stops."""
import struct
from unittest import mock

import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import ModalityWorklistInformationFind

from radiology.choices import AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.listener_peers import association_to
from tests.factories import PatientFactory
from tests.worklist.conftest import worklist_identifier
from tests.worklist.factories import ProcedureTypeFactory
from worklist.choices import OrderStatus
from worklist.models import Order, ScheduledProcedureStep

pytestmark = pytest.mark.django_db(transaction=True)

DATASET_MISMATCH, CANNOT_UNDERSTAND, CANCEL = 0xA900, 0xC000, 0xFE00


def failure(listener, identifier):
    """The single response of a C-FIND expected to fail: (status, error comment)."""
    with association_to(listener, [ModalityWorklistInformationFind], calling_ae="CT_ROOM1") as association:
        responses = list(association.send_c_find(identifier, ModalityWorklistInformationFind))
    [(status, found)] = responses
    assert found is None
    return status.Status, status.get("ErrorComment", "")


def test_a_malformed_start_date_is_refused(listener, ct_station):
    assert failure(listener, worklist_identifier({"ScheduledProcedureStepStartDate": "2026-11-28"})) == (
        DATASET_MISMATCH, "ScheduledProcedureStepStartDate: bad date or range '2026-11-28'")


def test_a_date_that_does_not_exist_is_refused(listener, ct_station):
    assert failure(listener, worklist_identifier({"ScheduledProcedureStepStartDate": "20261131"})) == (
        DATASET_MISMATCH, "ScheduledProcedureStepStartDate: no such date '20261131'")


def test_a_malformed_start_time_is_refused(listener, ct_station):
    assert failure(listener, worklist_identifier({"ScheduledProcedureStepStartTime": "25:00"})) == (
        DATASET_MISMATCH, "ScheduledProcedureStepStartTime: bad time or range '25:00'")


def test_an_hour_past_23_is_refused(listener, ct_station):
    assert failure(listener, worklist_identifier({"ScheduledProcedureStepStartTime": "2500"}))[0] == (
        DATASET_MISMATCH)


def test_a_wildcard_in_a_uid_is_refused(listener, ct_station):
    assert failure(listener, worklist_identifier(StudyInstanceUID="1.2.3*")) == (
        DATASET_MISMATCH, "no wildcards in StudyInstanceUID")


def test_two_scheduled_procedure_step_items_are_refused(listener, ct_station):
    identifier = worklist_identifier({"Modality": "CT"})
    second = Dataset()
    second.Modality = "MR"
    identifier.ScheduledProcedureStepSequence.append(second)
    assert failure(listener, identifier) == (DATASET_MISMATCH, "ScheduledProcedureStepSequence must have one item")


def test_an_identifier_that_cannot_be_decoded_is_not_understood(listener, ct_station):
    # Rows (US) with three bytes: no whole number of values (the identifier is sent as raw bytes).
    identifier = worklist_identifier(AccessionNumber=None)
    raw = encode(identifier, True, True) + struct.pack("<HHI", 0x0028, 0x0010, 3) + b"ABC"
    with mock.patch("pynetdicom.association.encode", return_value=raw):
        assert failure(listener, identifier) == (CANNOT_UNDERSTAND, "identifier cannot be decoded")


def test_a_malformed_query_is_audited_as_a_failed_query(listener, ct_station):
    failure(listener, worklist_identifier({"ScheduledProcedureStepStartDate": "yesterday"}))
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.actor, event.outcome) == ("CT_ROOM1", AuditOutcome.MINOR_FAILURE)
    assert event.detail["error"].startswith("ScheduledProcedureStepStartDate: bad date")


def test_a_cancelled_query_stops_with_a_cancel_status(listener, ct_station):
    procedure = ProcedureTypeFactory(modality="CT")
    patient = PatientFactory()
    now = timezone.now()
    booked = Order.objects.bulk_create(
        Order(accession_number=f"ACC{number:05d}", patient=patient, procedure=procedure,
              requested_procedure_id=f"RP{number}", study_instance_uid=generate_uid(),
              status=OrderStatus.SCHEDULED, status_changed_at=now) for number in range(1000))
    ScheduledProcedureStep.objects.bulk_create(
        ScheduledProcedureStep(order=order, step_id=f"SPS{order.pk}", station=ct_station, station_ae_title="CT_ROOM1",
                               modality="CT", start=now, end=now) for order in booked)
    with association_to(listener, [ModalityWorklistInformationFind], calling_ae="CT_ROOM1") as association:
        responses = association.send_c_find(worklist_identifier(AccessionNumber=None),
                                            ModalityWorklistInformationFind, msg_id=7)
        first_status, _ = next(responses)
        context_id = next(context.context_id for context in association.accepted_contexts
                          if context.abstract_syntax == ModalityWorklistInformationFind)
        association.send_c_cancel(7, context_id)
        rest = [(status.Status, found) for status, found in responses]
    assert first_status.Status == 0xFF00
    assert rest[-1] == (CANCEL, None)
    assert len(rest) < 1000
    assert AuditEvent.objects.get(code=AuditEventCode.QUERY).detail["cancelled"] is True
