from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from archive.dicomweb.wado import wado_uri
from radiology import views

admin.site.site_header = "Radiology platform administration"
admin.site.site_title = "Radiology platform"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("radiology.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("archive.urls")),
    path("worklist/", include("worklist.urls")),
    path("reports/", include("reporting.urls")),
    path("dicomweb/", include("archive.dicomweb.urls")),
    path("wado", wado_uri, name="wado-uri"),
]
