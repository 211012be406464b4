from rest_framework.routers import DefaultRouter

from radiology.api.views import PatientViewSet
from worklist.api.urls import register as register_worklist

router = DefaultRouter()
router.register("patients", PatientViewSet)
register_worklist(router)

urlpatterns = router.urls
