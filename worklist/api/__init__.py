"""The RIS part of the REST API: /api/procedures/, /api/orders/ and /api/worklist/ (registered on the one router
in radiology/api/urls.py)."""
