"""Presence on a report over /ws/reports/<id>/presence/: who else has the report open in the editor."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from radiology.asgi import application
from radiology.choices import AuditChannel, Role
from radiology.consumers import CLOSE_UNAUTHENTICATED
from reporting import reports
from reporting.consumers import CLOSE_FORBIDDEN
from tests.factories import UserFactory
from tests.worklist.factories import make_readable_order

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie_for(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def _draft(radiologist, clinician):
    order = make_readable_order(referring_physician=clinician)
    return reports.start_report(order, radiologist, channel=AuditChannel.WEB)


@pytest.fixture
def draft(radiologist, clinician):
    return _draft(radiologist, clinician)


async def open_presence(report, user=None):
    headers = [ORIGIN]
    if user is not None:
        headers.append(await sync_to_async(session_cookie_for)(user))
    communicator = WebsocketCommunicator(application, f"/ws/reports/{report.pk}/presence/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_an_anonymous_visitor_is_closed_with_4401(draft):
    _, connected, code = await open_presence(draft)

    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_a_clinician_may_not_watch_a_draft(draft, clinician):
    _, connected, code = await open_presence(draft, clinician)

    assert not connected
    assert code == CLOSE_FORBIDDEN


async def test_the_first_editor_sees_no_one_else(draft, radiologist):
    marie, connected, _ = await open_presence(draft, radiologist)

    assert connected
    assert await marie.receive_json_from(timeout=5) == {"kind": "presence", "editors": []}
    await marie.disconnect()


async def test_a_colleague_opening_the_report_is_announced_and_leaves_when_they_close(draft, radiologist):
    colleague = await sync_to_async(UserFactory)(username="pierre", first_name="Pierre", last_name="Curie",
                                                 role=Role.RADIOLOGIST)
    marie, _, _ = await open_presence(draft, radiologist)
    assert await marie.receive_json_from(timeout=5) == {"kind": "presence", "editors": []}

    pierre, _, _ = await open_presence(draft, colleague)

    assert await marie.receive_json_from(timeout=5) == {"kind": "presence", "editors": [
        {"user_id": colleague.pk, "name": "Dr Pierre Curie", "you": False}]}
    # The newcomer learns who was there first.
    messages = [await pierre.receive_json_from(timeout=5), await pierre.receive_json_from(timeout=5)]
    assert messages[-1]["editors"] == [
        {"user_id": radiologist.pk, "name": f"Dr {radiologist.get_full_name()}", "you": False}]

    await pierre.disconnect()
    assert await marie.receive_json_from(timeout=5) == {"kind": "presence", "editors": []}
    await marie.disconnect()


async def test_presence_is_per_report(draft, radiologist, clinician):
    other = await sync_to_async(_draft)(radiologist, clinician)
    marie, _, _ = await open_presence(draft, radiologist)
    await marie.receive_json_from(timeout=5)

    elsewhere, _, _ = await open_presence(other, radiologist)
    await elsewhere.receive_json_from(timeout=5)

    assert await marie.receive_nothing(timeout=0.3)
    await elsewhere.disconnect()
    await marie.disconnect()
