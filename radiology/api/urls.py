from rest_framework.routers import DefaultRouter

from radiology.api.views import PatientViewSet
from reporting.api.urls import register as register_reporting
from reporting.dictation.api import register as register_dictation
from worklist.api.urls import register as register_worklist

router = DefaultRouter()
router.register("patients", PatientViewSet)
register_worklist(router)
register_reporting(router)
register_dictation(router)

urlpatterns = router.urls
