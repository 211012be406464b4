"""The live order stream at /ws/worklist/: each committed order change reaches the open pages that may see it."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from radiology.asgi import application
from radiology.choices import AuditChannel, Role
from radiology.consumers import CLOSE_UNAUTHENTICATED
from tests.factories import UserFactory
from tests.worklist.factories import make_order, make_readable_order
from worklist import reading
from worklist.consumers import CLOSE_FORBIDDEN

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie_for(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect(user=None):
    headers = [ORIGIN]
    if user is not None:
        headers.append(await sync_to_async(session_cookie_for)(user))
    communicator = WebsocketCommunicator(application, "/ws/worklist/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_an_anonymous_visitor_is_refused(db):
    _, connected, code = await connect()
    assert (connected, code) == (False, CLOSE_UNAUTHENTICATED)


async def test_an_account_that_may_not_see_orders_is_refused(db):
    nobody = await sync_to_async(UserFactory)(username="norole")
    _, connected, code = await connect(nobody)
    assert (connected, code) == (False, CLOSE_FORBIDDEN)


async def test_a_new_order_is_announced_after_its_commit(technologist, clinician):
    communicator, connected, _ = await connect(technologist)
    assert connected

    order = await sync_to_async(make_order)(referring_physician=clinician)

    assert await communicator.receive_json_from(timeout=5) == {
        "kind": "order.changed", "order_id": order.pk, "accession_number": order.accession_number,
        "status": "requested", "status_label": "Requested", "priority": "R", "patient_id": order.patient_id,
        "referring_physician_id": clinician.pk, "claimed_by_id": None, "claimed_by": ""}
    await communicator.disconnect()


async def test_a_rolled_back_order_is_never_announced(technologist):
    communicator, _, _ = await connect(technologist)

    def order_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            make_order()
            raise RuntimeError("rolled back")

    await sync_to_async(order_then_roll_back)()
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_clinician_hears_only_of_the_orders_they_referred(clinician):
    colleague = await sync_to_async(UserFactory)(username="james", role=Role.CLINICIAN)
    communicator, connected, _ = await connect(clinician)
    assert connected

    await sync_to_async(make_order)(referring_physician=colleague)
    await sync_to_async(make_order)()
    mine = await sync_to_async(make_order)(referring_physician=clinician)

    received = await communicator.receive_json_from(timeout=5)
    assert (received["order_id"], received["referring_physician_id"]) == (mine.pk, clinician.pk)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_claim_is_announced_with_who_holds_the_case(radiologist):
    case = await sync_to_async(make_readable_order)()
    communicator, _, _ = await connect(radiologist)

    await sync_to_async(reading.claim)(case, radiologist, channel=AuditChannel.WEB)

    received = await communicator.receive_json_from(timeout=5)
    assert (received["kind"], received["order_id"], received["status"], received["claimed_by_id"],
            received["claimed_by"]) == ("order.changed", case.pk, "completed", radiologist.pk,
                                        radiologist.get_full_name())
    await communicator.disconnect()


async def test_ping_is_answered(technologist):
    communicator, _, _ = await connect(technologist)
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()
