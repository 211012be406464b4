from django.db import models


class IngestEventKind(models.TextChoices):
    DEMOGRAPHICS_CONFLICT = "demographics-conflict", "Patient demographics differ from the stored patient"
    DUPLICATE_DIFFERENT_CONTENT = "duplicate-different", "Same SOP Instance UID, different content"


class DuplicatePolicy(models.TextChoices):
    """What to do when an instance arrives again with a known SOP Instance UID but different bytes."""

    KEEP_FIRST = "keep-first", "Keep the stored copy, answer a warning"
    REPLACE = "replace", "Replace the stored copy with the new one"
    REJECT = "reject", "Refuse the new copy with a failure status"


class TransferKind(models.TextChoices):
    SEND = "send", "Send (C-STORE to a node)"
    PULL = "pull", "Pull (C-MOVE from a node to us)"


class TransferStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    PARTIAL = "partial", "Done with failures"
    FAILED = "failed", "Failed"
