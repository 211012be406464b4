"""The reporting pages, under /reports/."""
from django.urls import path

from reporting import views

app_name = "reporting"

urlpatterns = [
    # The radiologist's editor for the report on an order (the reading worklist links here).
    path("orders/<int:order_id>/", views.editor, name="editor"),
    path("orders/<int:order_id>/start/", views.start, name="start"),
    # A report as the referring clinician reads it.
    path("<int:pk>/", views.report_detail, name="report"),
    path("<int:pk>/versions/<int:version>/", views.version_detail, name="version"),
    path("<int:pk>/addenda/", views.addendum_create, name="addendum-create"),
]

# Distribution and critical results (reporting/distribution_views.py, reporting/critical_views.py).
from reporting import critical_views, distribution_views  # noqa: E402

urlpatterns += [
    path("<int:pk>/pdf/", distribution_views.report_pdf, name="report-pdf"),
    path("<int:pk>/critical/", critical_views.critical_mark, name="critical-mark"),
    path("critical/", critical_views.critical_open, name="critical-open"),
    path("critical/mine/", critical_views.critical_mine, name="critical-mine"),
    path("critical/<int:pk>/acknowledge/", critical_views.critical_acknowledge, name="critical-acknowledge"),
    path("critical/<int:pk>/close/", critical_views.critical_close, name="critical-close"),
]
