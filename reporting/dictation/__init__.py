"""Dictation into reports: pluggable speech-to-text (backends.py), audio checks and storage (audio.py), voice
commands (commands.py), the service (services.py), the REST resource (api.py) and the WebSocket (consumers.py).
See docs/reporting.md, "Dictation"."""
