"""One inbound HL7 message from bytes to acknowledgement: header checks, the duplicate check, the handler for its
type in one transaction, and the InboundMessage row that keeps it raw with its outcome.

Synchronous and database-bound: the MLLP listener (worklist/hl7/mllp.py) calls `receive` from a worker thread,
the admin's "reprocess" action calls `reprocess`.
"""
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from radiology.choices import AuditChannel
from worklist.hl7 import adt, messages, orm
from worklist.hl7.messages import ACCEPT, MessageError, MessageProblem, MessageRejected
from worklist.models import InboundMessage
from worklist.orders import OrderError

logger = logging.getLogger(__name__)

# Message type → trigger event → handler(message, context). Everything else is rejected (AR 200 / 201).
HANDLERS = {
    "ADT": {"A01": adt.handle_upsert, "A04": adt.handle_upsert, "A08": adt.handle_upsert, "A40": adt.handle_merge},
    "ORM": {"O01": orm.handle_order},
}


@dataclass
class Context:
    """Who a message's changes are attributed to: the sending application over the HL7 channel, and the
    administrator when one reprocesses it."""

    actor: str
    source_address: str = ""
    user: object = None
    channel: str = AuditChannel.HL7


@dataclass
class Outcome:
    ack: str
    code: str
    error: str = ""
    applied: bool = False
    message: InboundMessage | None = None


def receive(block, peer_address=""):
    """Process one MLLP block (bytes) and return its Outcome, whose `ack` is the text to send back."""
    raw = messages.decode(block)
    text = messages.normalise(raw)
    header = messages.read_header(text)
    try:
        messages.check_header(text, header)
        handler = _handler_for(header)
    except MessageRejected as problem:
        return _record(raw, header, peer_address, messages.REJECT, problem)

    context = Context(actor=_actor(header), source_address=peer_address)
    try:
        with transaction.atomic():
            # Inside the transaction: with SQLite's IMMEDIATE transactions two connections delivering the same
            # message are serialised here, so the second one sees the first one's row.
            earlier = _applied_earlier(header)
            if earlier is not None:
                logger.info("HL7 %s %s from %s already applied (message %s); acknowledged again",
                            header.type_name, header.control_id, header.sending_application, earlier.pk)
                return _record(raw, header, peer_address, ACCEPT, None,
                               note=f"duplicate of message {earlier.pk}, applied "
                                    f"{earlier.processed_at:%Y-%m-%d %H:%M:%S}; not applied again")
            handler(messages.parse(text), context)
            return _record(raw, header, peer_address, ACCEPT, None, applied=True)
    except Exception as exc:  # noqa: BLE001 - every failure is answered and kept; see _problem_for
        problem = _problem_for(exc)
    # The transaction was rolled back, so nothing of the message is applied; it is kept with its error in a
    # transaction of its own. (A savepoint around the handler would keep it in one, at the cost of two
    # statements on every message that succeeds.)
    return _record(raw, header, peer_address, problem.acknowledgement, problem)


def reprocess(inbound, user):
    """Run a stored message's handler again (after the cause of its error was fixed) and record the new outcome
    on the same row. A message already applied is not applied twice: it is left as it is."""
    if inbound.applied:
        raise MessageError(f"message {inbound.control_id} was already applied")
    text = messages.normalise(inbound.raw)
    header = messages.read_header(text)
    try:
        messages.check_header(text, header)
        handler = _handler_for(header)
    except MessageRejected as problem:
        _save_outcome(inbound, messages.REJECT, problem, applied=False)
        return inbound
    if _applied_earlier(header) is not None:
        raise MessageError(f"a message with control ID {header.control_id} from "
                           f"{header.sending_application or 'this sender'} was applied since")
    context = Context(actor=_actor(header), user=user)
    try:
        with transaction.atomic():
            handler(messages.parse(text), context)
            _save_outcome(inbound, ACCEPT, None, applied=True)
            return inbound
    except Exception as exc:  # noqa: BLE001 - as in receive
        problem = _problem_for(exc)
    _save_outcome(inbound, problem.acknowledgement, problem, applied=False)
    return inbound


# ---------------------------------------------------------------------------------------------------------

def _handler_for(header):
    events = HANDLERS.get(header.message_type)
    if events is None:
        raise MessageRejected(f"message type {header.type_name} is not supported (ADT^A01/A04/A08/A40, ORM^O01)",
                              messages.UNSUPPORTED_MESSAGE_TYPE, "MSH", 9)
    handler = events.get(header.trigger_event)
    if handler is None:
        raise MessageRejected(f"event {header.type_name} is not supported for {header.message_type} "
                              f"({', '.join(f'{header.message_type}^{event}' for event in events)})",
                              messages.UNSUPPORTED_EVENT_CODE, "MSH", 9)
    return handler


def _problem_for(exc):
    """The MessageProblem to answer for an exception raised while applying a message."""
    if isinstance(exc, MessageProblem):
        return exc
    if isinstance(exc, OrderError):
        # The order and patient rules' refusals, in words fit for ERR-8.
        return MessageError(str(exc), messages.APPLICATION_INTERNAL_ERROR)
    logger.error("HL7 message could not be applied", exc_info=exc)
    return MessageError(f"internal error: {type(exc).__name__}: {exc}", messages.APPLICATION_INTERNAL_ERROR)


def _applied_earlier(header):
    return (InboundMessage.objects.filter(
        sending_application=header.sending_application, sending_facility=header.sending_facility,
        control_id=header.control_id, applied=True).only("pk", "processed_at").first())


def _record(raw, header, peer_address, code, problem, applied=False, note=""):
    error = problem.text if problem is not None else note
    if problem is not None:
        logger.warning("HL7 %s %s from %s (%s): %s %s", header.type_name or "message", header.control_id or "-",
                       header.sending_application or "-", peer_address or "-", code, problem.text)
    stored = InboundMessage.objects.create(
        control_id=header.control_id[:64], sending_application=header.sending_application[:227],
        sending_facility=header.sending_facility[:227], message_type=header.type_name[:32],
        # A NUL cannot be stored in a PostgreSQL text column; it has no place in HL7 text either.
        raw=raw.replace("\x00", "\ufffd"),
        outcome=code, error=error, applied=applied, peer_address=peer_address[:64], processed_at=timezone.now())
    return Outcome(ack=messages.build_ack(header, code, problem), code=code, error=error, applied=applied,
                   message=stored)


def _save_outcome(inbound, code, problem, applied):
    inbound.outcome = code
    inbound.error = problem.text if problem is not None else ""
    inbound.applied = applied
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=["outcome", "error", "applied", "processed_at"])


def _actor(header):
    # The sending application names who made the change (OrderStatusChange.actor, audit events).
    return "/".join(filter(None, [header.sending_application, header.sending_facility])) or "HL7"
