"""The RIS resources, registered on the project's one API router (radiology/api/urls.py)."""
from worklist.api.views import OrderViewSet, ProcedureTypeViewSet, ReadingWorklistViewSet


def register(router):
    router.register("procedures", ProcedureTypeViewSet)
    router.register("orders", OrderViewSet)
    router.register("worklist", ReadingWorklistViewSet, basename="reading-worklist")
