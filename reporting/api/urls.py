"""The reporting resources, registered on the project's one API router (radiology/api/urls.py)."""
from reporting.api.views import ReportViewSet


def register(router):
    router.register("reports", ReportViewSet)
