"""Storage commitment (PS3.4 J.3): does the archive hold, intact, each SOP instance a node asks it to keep?

An instance is committed when it is indexed under the SOP Class it was referenced with, and its file is in
storage with the SHA-256 recorded when it arrived. Any DICOM channel (the Storage Commitment SCP now) asks here.
"""
import logging
from dataclasses import dataclass, field

from archive.models import Instance
from archive.storage import archive_storage, file_digest

logger = logging.getLogger(__name__)

# Failure Reason (0008,1197) values, PS3.3 C.14.1.1.
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119

# SQLite limits the number of parameters of one query; ask for the instances in slices.
_LOOKUP_SLICE = 500


@dataclass(frozen=True)
class Reference:
    sop_class_uid: str
    sop_instance_uid: str


@dataclass
class CommitmentResult:
    committed: list = field(default_factory=list)  # of Reference
    failed: list = field(default_factory=list)  # of (Reference, failure reason)

    @property
    def all_committed(self):
        return not self.failed


def check_commitment(references):
    """Check each Reference; a reference appears in the result once per time it was asked for."""
    storage = archive_storage()
    wanted = sorted({reference.sop_instance_uid for reference in references})
    instances = {}
    for start in range(0, len(wanted), _LOOKUP_SLICE):
        for instance in Instance.objects.filter(sop_instance_uid__in=wanted[start:start + _LOOKUP_SLICE]).only(
                "sop_instance_uid", "sop_class_uid", "storage_key", "sha256"):
            instances[instance.sop_instance_uid] = instance

    result = CommitmentResult()
    intact = {}
    for reference in references:
        instance = instances.get(reference.sop_instance_uid)
        if instance is None:
            result.failed.append((reference, NO_SUCH_OBJECT_INSTANCE))
        elif instance.sop_class_uid != reference.sop_class_uid:
            result.failed.append((reference, CLASS_INSTANCE_CONFLICT))
        else:
            if instance.sop_instance_uid not in intact:
                intact[instance.sop_instance_uid] = _file_is_intact(storage, instance)
            if intact[instance.sop_instance_uid]:
                result.committed.append(reference)
            else:
                result.failed.append((reference, PROCESSING_FAILURE))
    return result


def _file_is_intact(storage, instance):
    try:
        _, sha256 = file_digest(storage.path(instance.storage_key))
    except OSError as exc:
        logger.error("stored file of %s cannot be read: %s", instance.sop_instance_uid, exc)
        return False
    if sha256 != instance.sha256:
        logger.error("stored file of %s no longer matches its SHA-256 (index %s, file %s)",
                     instance.sop_instance_uid, instance.sha256, sha256)
        return False
    return True
