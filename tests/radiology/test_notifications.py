"""The per-user notification WebSocket at /ws/notifications/."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from radiology.asgi import application
from radiology.consumers import CLOSE_UNAUTHENTICATED
from radiology.notifications import notify_user

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie_for(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect(*headers):
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, *headers])
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_an_anonymous_visitor_is_refused(db):
    communicator, connected, code = await connect()
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_a_page_from_another_site_is_refused(clinician):
    cookie = await sync_to_async(session_cookie_for)(clinician)
    communicator = WebsocketCommunicator(application, "/ws/notifications/",
                                         headers=[(b"origin", b"https://evil.example"), cookie])
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_signed_in_user_receives_their_notifications_after_commit(clinician):
    communicator, connected, _ = await connect(await sync_to_async(session_cookie_for)(clinician))
    assert connected

    def notify_in_a_transaction():
        with transaction.atomic():
            notify_user(clinician, "order", "CT head for Doe, Jane is scheduled", order_id=7)

    await sync_to_async(notify_in_a_transaction)()
    assert await communicator.receive_json_from(timeout=5) == {
        "kind": "order", "message": "CT head for Doe, Jane is scheduled", "order_id": 7}
    await communicator.disconnect()


async def test_a_rolled_back_change_sends_nothing(clinician):
    communicator, _, _ = await connect(await sync_to_async(session_cookie_for)(clinician))

    def notify_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            notify_user(clinician, "order", "never happened")
            raise RuntimeError("rolled back")

    await sync_to_async(notify_then_roll_back)()
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_users_do_not_hear_each_others_notifications(clinician, radiologist):
    communicator, _, _ = await connect(await sync_to_async(session_cookie_for)(radiologist))
    await sync_to_async(notify_user)(clinician, "order", "for Gregory only")
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_ping_is_answered(clinician):
    communicator, _, _ = await connect(await sync_to_async(session_cookie_for)(clinician))
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()
