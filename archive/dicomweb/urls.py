"""DICOMweb (PS3.18) routes under /dicomweb/. Each service's views live in their own module of this package."""
from django.urls import path

app_name = "dicomweb"

urlpatterns = [
]
