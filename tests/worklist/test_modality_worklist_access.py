"""Who may ask for the Modality Worklist: stations, DICOM nodes allowed to query, anyone when the listener is
open; every query and refusal is audited."""
import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityWorklistInformationFind
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyRootFind

from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.listener_peers import (
    associate, association_to, register_node, wait_for_associations_to_end,
)
from tests.worklist.conftest import worklist_identifier
from tests.worklist.factories import StationFactory, make_scheduled_order

pytestmark = pytest.mark.django_db(transaction=True)

NOT_AUTHORIZED = 0x0124


def test_an_unknown_calling_ae_is_not_associated(listener):
    association = associate(listener, [ModalityWorklistInformationFind], calling_ae="STRANGER")
    assert association.is_rejected
    wait_for_associations_to_end(listener)
    event = AuditEvent.objects.get(code=AuditEventCode.NETWORK_ENTRY)
    assert (event.actor, event.detail["result"]) == ("STRANGER", "rejected")


def test_an_inactive_station_is_not_associated(listener):
    StationFactory(ae_title="OLD_CT", active=False)
    association = associate(listener, [ModalityWorklistInformationFind], calling_ae="OLD_CT")
    assert association.is_rejected


def test_a_station_gets_its_worklist(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9))
    assert [found.AccessionNumber for found in matches(worklist_identifier(AccessionNumber=None))] == [
        order.accession_number]


def test_a_node_allowed_to_query_gets_the_worklist(matches, ct_station, today_at):
    register_node("RIS_VIEWER", allow_store=False, allow_query=True)
    make_scheduled_order(ct_station, start=today_at(9))
    assert len(matches(worklist_identifier(AccessionNumber=None), calling_ae="RIS_VIEWER")) == 1


def test_a_node_not_allowed_to_query_is_refused_and_audited(find_worklist, ct_station, today_at):
    register_node("STORE_ONLY", allow_query=False)
    make_scheduled_order(ct_station, start=today_at(9))
    assert find_worklist(worklist_identifier(AccessionNumber=None), calling_ae="STORE_ONLY") == [
        (NOT_AUTHORIZED, None)]
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.actor, event.outcome, event.detail["error"]) == (
        "STORE_ONLY", AuditOutcome.SERIOUS_FAILURE, "calling AE may not query the worklist")


def test_any_calling_ae_gets_the_worklist_when_the_listener_is_open(matches, settings, ct_station, today_at):
    settings.DICOM_OPEN = True
    make_scheduled_order(ct_station, start=today_at(9))
    assert len(matches(worklist_identifier(AccessionNumber=None), calling_ae="ANYONE")) == 1


def test_each_worklist_query_is_audited_with_its_keys_and_patient(matches, ct_station, today_at):
    order = make_scheduled_order(ct_station, start=today_at(9))
    matches(worklist_identifier({"ScheduledStationAETitle": "CT_ROOM1"}, AccessionNumber=None))
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.actor, event.channel, event.action, event.outcome) == (
        "CT_ROOM1", AuditChannel.DICOM, "E", AuditOutcome.SUCCESS)
    assert event.detail["model"] == "modality worklist"
    assert event.detail["keys"] == "ScheduledStationAETitle=CT_ROOM1"
    assert event.detail["matches"] == 1
    assert event.patient == order.patient


def test_a_station_may_not_query_the_archive(listener, ct_station):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    with association_to(listener, [StudyRootFind], calling_ae="CT_ROOM1") as association:
        responses = [status.Status for status, _ in association.send_c_find(identifier, StudyRootFind)]
    assert responses == [NOT_AUTHORIZED]
