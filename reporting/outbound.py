"""The durable outbound HL7 queue: every message to an endpoint is an OutboundMessage row, written in the same
transaction as the change it reports, and kept until the receiver acknowledges it or it is given up on.

    queued ──attempt──▶ sent                     (MSA-1 AA/CA for our MSH-10)
      │                                                                  ▲
      └─ failure ─▶ failed ──retry after back-off (doubling)─────────────┘
                      └─ OUTBOUND_MAX_ATTEMPTS failures, or an AE/CE ──▶ dead: administrators alerted

Delivery is MLLP (HL7 v2.5.1 appendix C) through python-hl7's asyncio client, one message and its ACK per
connection. An attempt is claimed with a conditional UPDATE that moves `next_attempt_at` forward by a lease, so
two workers (the task sent after commit and the periodic runner) never send the same message at once; a worker
that dies mid-attempt leaves the message to be tried again when the lease ends.

Messages to one endpoint go in the order they were queued: a message is not sent while an older one to the same
endpoint is still pending, so a corrected result never overtakes the final one it corrects. A dead letter stops
blocking its endpoint; an administrator sends it again from the admin (`requeue`).

What the receiver answers decides: AA/CA accepted; AR/CR (rejected: the receiver could not take it now) and no
answer at all are retried; AE/CE (the receiver found an error in the message) are not, since the same bytes would
fail the same way: the message becomes a dead letter at once.
"""
import asyncio
import logging
from datetime import timedelta

import hl7
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from hl7.mllp import open_hl7_connection
from hl7.mllp.exceptions import InvalidBlockError

from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome, Role
from radiology.notifications import notify_user
from reporting.models import PENDING_OUTBOUND, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)

# How long a claimed attempt holds its message before another worker may take it (longer than any attempt).
LEASE_SECONDS = 300
# A retry task may be run a moment before its message's time (timer resolution); that still counts as due.
DUE_TOLERANCE = timedelta(seconds=2)
# HL7 table 0008 acknowledgement codes.
ACCEPTED = ("AA", "CA")
ERROR = ("AE", "CE")


class DeliveryFailed(Exception):
    """An attempt that did not end in an acceptance; `final` when trying again cannot help."""

    def __init__(self, text, *, final=False, ack=""):
        super().__init__(text)
        self.final = final
        self.ack = ack


def enqueue(endpoint, payload, *, control_id, report=None, message_type="ORU^R01"):
    """Queue a message for `endpoint` in the caller's transaction; delivery starts after the commit."""
    message = OutboundMessage.objects.create(
        endpoint=endpoint, report=report, message_type=message_type, control_id=control_id, payload=payload,
        next_attempt_at=timezone.now())
    transaction.on_commit(lambda: _schedule_delivery(message.pk))
    return message


def deliver(message_id, *, now=None):
    """One attempt at the message, if it is due, pending and first in its endpoint's line. Returns the message
    as it stands afterwards, or None when there was nothing to do now."""
    message = _claim(message_id, now or timezone.now())
    if message is None:
        return None
    try:
        ack = send_mllp(message.endpoint.host, message.endpoint.port, message.payload,
                        timeout=settings.OUTBOUND_TIMEOUT_SECONDS)
        _check_ack(ack, message.control_id)
    except DeliveryFailed as exc:
        return _failed(message, exc, now=now)
    except OSError as exc:
        return _failed(message, DeliveryFailed(f"{message.endpoint.host}:{message.endpoint.port}: "
                                               f"{exc.strerror or exc.__class__.__name__}"), now=now)
    return _sent(message, ack, now=now)


def deliver_due(*, now=None):
    """The periodic runner: one attempt at the first pending, due message of every endpoint, and on for as long
    as an endpoint accepts. Returns how many messages were sent."""
    now = now or timezone.now()
    sent = 0
    for endpoint_id in (OutboundMessage.objects.filter(status__in=PENDING_OUTBOUND)
                        .values_list("endpoint_id", flat=True).distinct()):
        while True:
            head = _head_of_line(endpoint_id)
            if head is None or head.next_attempt_at > now:
                break
            result = deliver(head.pk, now=now)
            if result is None or result.status != OutboundStatus.SENT:
                break
            sent += 1
    return sent


@transaction.atomic
def requeue(message, user):
    """Send a dead letter (or a failed message) again now, from the first attempt's back-off."""
    count = OutboundMessage.objects.filter(pk=message.pk, status__in=[OutboundStatus.DEAD, OutboundStatus.FAILED]) \
        .update(status=OutboundStatus.QUEUED, attempts=0, next_attempt_at=timezone.now())
    if count:
        _audit(message, "U", actor=user.get_username(), user=user, what="requeued")
        transaction.on_commit(lambda: _schedule_delivery(message.pk))
    return bool(count)


def send_mllp(host, port, payload, *, timeout):
    """Send one message over MLLP and return the acknowledgement's text."""
    async def exchange():
        reader, writer = await asyncio.wait_for(open_hl7_connection(host, port, encoding="utf-8"), timeout)
        try:
            writer.writeblock(payload.encode("utf-8"))
            await asyncio.wait_for(writer.drain(), timeout)
            return (await asyncio.wait_for(reader.readblock(), timeout)).decode("utf-8", errors="replace")
        finally:
            writer.close()

    try:
        return asyncio.run(exchange())
    except asyncio.TimeoutError:
        raise DeliveryFailed(f"{host}:{port}: no acknowledgement within {timeout} s") from None
    except asyncio.IncompleteReadError:
        raise DeliveryFailed(f"{host}:{port}: the connection closed before an acknowledgement came") from None
    except (InvalidBlockError, ValueError):
        raise DeliveryFailed(f"{host}:{port}: the answer is not an MLLP block") from None


def backoff_seconds(attempts):
    """The wait after the `attempts`-th failed attempt: the first wait, doubled each time, up to the maximum."""
    return min(settings.OUTBOUND_RETRY_SECONDS * 2 ** (attempts - 1), settings.OUTBOUND_MAX_RETRY_SECONDS)


# ---------------------------------------------------------------------------------------------------------

def _schedule_delivery(message_id):
    from reporting.distribution_tasks import deliver_outbound_message

    try:
        deliver_outbound_message.delay(message_id)
    except Exception:  # noqa: BLE001 - the message is queued in the database; the periodic runner sends it
        logger.exception("could not hand outbound message %s to the task queue; the periodic runner will send it",
                         message_id)


def _head_of_line(endpoint_id):
    return (OutboundMessage.objects.filter(endpoint_id=endpoint_id, status__in=PENDING_OUTBOUND)
            .order_by("created_at", "pk").first())


def _claim(message_id, now):
    message = OutboundMessage.objects.select_related("endpoint").filter(pk=message_id).first()
    if message is None or message.status not in PENDING_OUTBOUND or message.next_attempt_at > now + DUE_TOLERANCE:
        return None
    head = _head_of_line(message.endpoint_id)
    if head is not None and head.pk != message.pk:
        # An older message to this endpoint goes first; this one follows when that one is sent or dead.
        return None
    claimed = OutboundMessage.objects.filter(
        pk=message.pk, status__in=PENDING_OUTBOUND, next_attempt_at=message.next_attempt_at,
    ).update(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
    return message if claimed else None


def _check_ack(ack, control_id):
    try:
        # Some receivers end segments with LF or CRLF instead of HL7's CR.
        parsed = hl7.parse(ack.replace("\r\n", "\r").replace("\n", "\r").strip())
        msa = parsed.segment("MSA")
    except Exception:  # noqa: BLE001 - python-hl7 raises several kinds for text that is not HL7
        raise DeliveryFailed("the answer is not an HL7 acknowledgement (no MSA segment)", ack=ack) from None
    code = str(msa(1)).strip()
    acknowledged_id = str(msa(2)).strip()
    if acknowledged_id != control_id:
        raise DeliveryFailed(f"the acknowledgement is for message {acknowledged_id!r}, not {control_id!r}", ack=ack)
    if code in ACCEPTED:
        return
    text = _ack_text(parsed, msa) or "no reason given"
    if code in ERROR:
        raise DeliveryFailed(f"the receiver answered {code}: {text}", final=True, ack=ack)
    raise DeliveryFailed(f"the receiver answered {code or 'no code'}: {text}", ack=ack)


def _ack_text(parsed, msa):
    """MSA-3 (text message, v2.3), else ERR-8 (user message, v2.5), else ERR-1 (v2.3's error code and location)."""
    text = str(msa(3)).strip() if len(msa) > 3 else ""
    if text:
        return text
    try:
        err = parsed.segment("ERR")
    except KeyError:
        return ""
    for field in (8, 1):
        if len(err) > field and str(err(field)).strip():
            return str(err(field)).strip()
    return ""


def _sent(message, ack, *, now=None):
    moment = now or timezone.now()
    with transaction.atomic():
        OutboundMessage.objects.filter(pk=message.pk).update(
            status=OutboundStatus.SENT, attempts=message.attempts + 1, sent_at=moment, ack=ack, last_error="",
            next_attempt_at=moment)
        _audit(message, "R", what="delivered", attempts=message.attempts + 1)
    logger.info("%s %s delivered to %s", message.message_type, message.control_id, message.endpoint.name)
    # The next message to this endpoint, if any, was waiting for this one.
    following = _head_of_line(message.endpoint_id)
    if following is not None:
        _schedule_delivery(following.pk)
    message.refresh_from_db()
    return message


def _failed(message, problem, *, now=None):
    moment = now or timezone.now()
    attempts = message.attempts + 1
    dead = problem.final or attempts >= settings.OUTBOUND_MAX_ATTEMPTS
    with transaction.atomic():
        if dead:
            OutboundMessage.objects.filter(pk=message.pk).update(
                status=OutboundStatus.DEAD, attempts=attempts, last_error=str(problem), ack=problem.ack,
                next_attempt_at=moment)
            message.refresh_from_db()
            _alert_dead_letter(message)
        else:
            wait = backoff_seconds(attempts)
            OutboundMessage.objects.filter(pk=message.pk).update(
                status=OutboundStatus.FAILED, attempts=attempts, last_error=str(problem), ack=problem.ack,
                next_attempt_at=moment + timedelta(seconds=wait))
            _audit(message, "R", outcome=AuditOutcome.MINOR_FAILURE, what="attempt failed", attempts=attempts,
                   error=str(problem), retry_in_seconds=wait)
            transaction.on_commit(lambda: _schedule_retry(message.pk, wait))
    logger.warning("%s %s to %s: attempt %d failed (%s)%s", message.message_type, message.control_id,
                   message.endpoint.name, attempts, problem, "; now a dead letter" if dead else "")
    if dead:
        # A dead letter no longer holds back the messages queued after it.
        following = _head_of_line(message.endpoint_id)
        if following is not None:
            _schedule_delivery(following.pk)
    message.refresh_from_db()
    return message


def _schedule_retry(message_id, wait):
    from reporting.distribution_tasks import deliver_outbound_message

    try:
        deliver_outbound_message.apply_async(args=[message_id], countdown=wait)
    except Exception:  # noqa: BLE001 - the periodic runner retries it anyway
        logger.exception("could not schedule the retry of outbound message %s", message_id)


def _alert_dead_letter(message):
    """Tell every administrator, live and by e-mail, and record a Security Alert: a result did not reach its
    receiver and a person must act."""
    text = (f"{message.message_type} {message.control_id} to {message.endpoint.name} was not delivered after "
            f"{message.attempts} attempt(s) and is now a dead letter: {message.last_error}")
    record_audit_event(AuditEventCode.SECURITY_ALERT, action="E", channel=AuditChannel.HL7, actor="system",
                       patient=message.report.order.patient if message.report_id else None,
                       object_type="outbound-message", object_id=message.control_id,
                       outcome=AuditOutcome.SERIOUS_FAILURE, endpoint=message.endpoint.name,
                       attempts=message.attempts, error=message.last_error, what="dead letter")
    administrators = get_user_model().objects.filter(groups__name=Role.ADMINISTRATOR, is_active=True)
    for administrator in administrators:
        notify_user(administrator, "outbound-dead-letter", text, message_id=message.pk)
    addresses = [address for address in administrators.values_list("email", flat=True) if address]
    if addresses:
        transaction.on_commit(lambda: _mail(f"HL7 message not delivered: {message.control_id}", text, addresses))


def _mail(subject, body, recipients):
    try:
        send_mail(subject, body, None, recipients)
    except Exception:  # noqa: BLE001 - the alert is also live and in the audit trail
        logger.exception("could not e-mail the dead-letter alert to %s", ", ".join(recipients))


def _audit(message, action, *, actor="system", user=None, outcome=AuditOutcome.SUCCESS, **detail):
    record_audit_event(AuditEventCode.EXPORT, action=action, channel=AuditChannel.HL7, actor=actor, user=user,
                       patient=message.report.order.patient if message.report_id else None,
                       object_type="outbound-message", object_id=message.control_id, outcome=outcome,
                       endpoint=message.endpoint.name, message_type=message.message_type, **detail)
