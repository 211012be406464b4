from django.urls import path

from archive import views

app_name = "archive"

urlpatterns = [
    path("studies/", views.study_list, name="study-list"),
    path("studies/transfers/", views.transfer_list, name="transfer-list"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/send/", views.study_send, name="study-send"),
    path("studies/<int:pk>/download.zip", views.study_download, name="study-download"),
    path("studies/<int:pk>/series/<int:series_pk>/thumbnail.png", views.series_thumbnail,
         name="series-thumbnail"),
]
