"""Signals the archive sends after an instance is committed; other apps (worklist reconciliation, routing,
live updates) listen here instead of being imported by the archive."""
from django.dispatch import Signal

# Sent after the transaction that indexed a new instance commits.
# Arguments: instance (archive.Instance), created_study (bool), created_series (bool), calling_ae, called_ae.
instance_stored = Signal()
