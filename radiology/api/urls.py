from rest_framework.routers import DefaultRouter

from radiology.api.views import PatientViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet)

urlpatterns = router.urls
