"""Writing the audit trail. Every channel (web, API, DICOM, HL7, FHIR) records through `record_audit_event`."""
import logging

from radiology.choices import AuditOutcome
from radiology.models import AuditEvent

logger = logging.getLogger(__name__)


def record_audit_event(code, *, action, channel, actor, user=None, source_address="", patient=None,
                       object_type="", object_id="", outcome=AuditOutcome.SUCCESS, **detail):
    """Record one audit event. `detail` holds what else an auditor needs (AE titles, query keys, counts)."""
    return AuditEvent.objects.create(
        code=code, action=action, outcome=outcome, channel=channel, user=user, actor=actor[:150],
        source_address=source_address or "", patient=patient, object_type=object_type,
        object_id=str(object_id)[:128], detail=detail)
