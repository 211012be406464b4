"""DICOMweb (PS3.18) routes under /dicomweb/. Each service's views live in their own module of this package."""
from django.http import HttpResponseNotAllowed
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from archive.dicomweb import qido, rendered, stow, wado

app_name = "dicomweb"


def by_method(**views):
    """One route served by different services per HTTP method (PS3.18: GET /studies is QIDO-RS, POST is STOW-RS).
    Django matches the first route whose path fits, so a path shared by two services must be one entry.
    CSRF is the services' own business (`dicomweb_endpoint` checks it for session requests)."""
    @csrf_exempt
    def dispatch(request, *args, **kwargs):
        view = views.get(request.method)
        if view is None and request.method == "HEAD":
            view = views.get("GET")
        if view is None:
            return HttpResponseNotAllowed(list(views))
        return view(request, *args, **kwargs)
    return dispatch


urlpatterns = [
    path("studies", by_method(GET=qido.search_studies, POST=stow.store_instances), name="studies"),
    path("studies/<str:study>", by_method(GET=wado.retrieve_study, POST=stow.store_instances), name="study"),
    path("studies/<str:study>/metadata", wado.study_metadata, name="study-metadata"),
    path("studies/<str:study>/series/<str:series>", wado.retrieve_series, name="series"),
    path("studies/<str:study>/series/<str:series>/metadata", wado.series_metadata, name="series-metadata"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>", wado.retrieve_instance,
         name="instance"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/metadata", wado.instance_metadata,
         name="instance-metadata"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frames>",
         wado.retrieve_frames, name="frames"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/bulkdata/<path:tag_path>",
         wado.retrieve_bulkdata, name="bulkdata"),
    # QIDO-RS (PS3.18 10.6); GET /studies is on the shared "studies" route above.
    path("studies/<str:study>/series", qido.search_series, name="study-series-search"),
    path("studies/<str:study>/instances", qido.search_instances, name="study-instances-search"),
    path("studies/<str:study>/series/<str:series>/instances", qido.search_instances,
         name="series-instances-search"),
    path("series", qido.search_series, name="series-search"),
    path("instances", qido.search_instances, name="instances-search"),
    # Rendered and thumbnail resources (PS3.18 8.3.5, 8.3.6).
    path("studies/<str:study>/rendered", rendered.study_rendered, name="study-rendered"),
    path("studies/<str:study>/thumbnail", rendered.study_thumbnail, name="study-thumbnail"),
    path("studies/<str:study>/series/<str:series>/rendered", rendered.series_rendered, name="series-rendered"),
    path("studies/<str:study>/series/<str:series>/thumbnail", rendered.series_thumbnail, name="series-thumbnail"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/rendered", rendered.instance_rendered,
         name="instance-rendered"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/thumbnail", rendered.instance_thumbnail,
         name="instance-thumbnail"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frames>/rendered",
         rendered.frame_rendered, name="frame-rendered"),
    path("studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frames>/thumbnail",
         rendered.frame_thumbnail, name="frame-thumbnail"),
]
