"""Administrators see the inbound HL7 messages in the admin and reprocess one whose cause of error was fixed;
the new outcome is recorded on the message, and an applied message is never applied twice."""
import pytest

from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory
from tests.worklist.hl7_fixtures import (  # noqa: F401 (fixtures)
    ack_code, ehr, hl7_listener, module_hl7_listener, orm,
)
from worklist.models import InboundMessage, Order

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/worklist/inboundmessage/"


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


def reprocess(admin_client, *messages):
    return admin_client.post(CHANGELIST, {"action": "reprocess", "_selected_action": [m.pk for m in messages]},
                             follow=True)


def test_the_message_list_and_a_message_page_show_the_raw_message_escaped(ehr, admin_client):
    ehr.send(orm("NW", control_id="SHOW1", mrn="<script>", placer="PL1"))
    stored = InboundMessage.objects.get()

    listing = admin_client.get(CHANGELIST).content.decode()
    page = admin_client.get(f"{CHANGELIST}{stored.pk}/change/").content.decode()

    assert "SHOW1" in listing and "AE" in listing
    assert "PID|1||&lt;script&gt;^^^GENHOSP^MR" in page
    assert "<script>^^^GENHOSP" not in page


def test_reprocessing_a_failed_message_after_the_fix_applies_it_and_records_aa(ehr, admin_client, administrator):
    PatientFactory(mrn="MRN100", issuer="GENHOSP")
    assert ack_code(ehr.send(orm("NW", control_id="FIX1", placer="PL2", procedure="USABD", modality="US"))) == "AE"
    failed = InboundMessage.objects.get()
    ProcedureTypeFactory(code="USABD", modality="US")

    response = reprocess(admin_client, failed)

    assert "applied (AA)" in response.content.decode()
    failed.refresh_from_db()
    assert (failed.outcome, failed.applied, failed.error) == ("AA", True, "")
    order = Order.objects.get(placer_order_number="PL2")
    assert order.status_changes.get().user == administrator


def test_reprocessing_a_message_that_still_fails_records_the_new_error(ehr, admin_client):
    assert ack_code(ehr.send(orm("NW", control_id="STILL1", mrn="MRN404", placer="PL3"))) == "AE"
    failed = InboundMessage.objects.get()
    failed.error = "an older error"
    failed.save()

    reprocess(admin_client, failed)

    failed.refresh_from_db()
    assert (failed.outcome, failed.applied) == ("AE", False)
    assert "unknown patient MRN MRN404" in failed.error
    assert not Order.objects.exists()


def test_reprocessing_an_applied_message_does_not_apply_it_again(ehr, admin_client):
    PatientFactory(mrn="MRN100", issuer="GENHOSP")
    ProcedureTypeFactory(code="CTHEAD", modality="CT")
    assert ack_code(ehr.send(orm("NW", control_id="ONCE1", placer="PL4"))) == "AA"
    applied = InboundMessage.objects.get()

    response = reprocess(admin_client, applied)

    assert "not reprocessed: message ONCE1 was already applied" in response.content.decode()
    assert Order.objects.count() == 1


def test_inbound_messages_cannot_be_edited_or_deleted_in_the_admin(ehr, admin_client):
    ehr.send(orm("NW", control_id="KEPT1", mrn="MRN404", placer="PL5"))
    stored = InboundMessage.objects.get()

    admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [stored.pk], "post": "yes"})
    admin_client.post(f"{CHANGELIST}{stored.pk}/change/", {"error": "edited"})

    stored.refresh_from_db()
    assert stored.error != "edited"
