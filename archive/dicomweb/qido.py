"""QIDO-RS (PS3.18 10.6): searching studies, series and instances over HTTP.

The query parameters become a C-FIND identifier for archive.query, so QIDO-RS and C-FIND match by one set of
rules (PS3.4 C.2.2.2). Searches are relational (PS3.18 10.6.1.2: `/series` and `/instances` may match on
attributes of the levels above) and answer `application/dicom+json` (PS3.18 F.2).
"""
import re
from dataclasses import dataclass, field

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from archive import query as archive_query
from archive.dicom_values import valid_uid
from archive.dicomweb.access import dicomweb_endpoint
from archive.dicomweb.dicom_json import (
    base_url, dataset_to_json, dicom_json_response, inline_header, instance_url, series_url, study_url,
)
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import Patient

# The most results one response carries; more are fetched with offset (PS3.18 8.3.4.4).
MAXIMUM_RESULTS = 1000

ACCEPTABLE = {"application/dicom+json", "application/json", "application/*", "*/*"}

# PS3.18 Table 10.6.3-3 (-4, -5): the attributes every result carries, before includefield.
STUDY_DEFAULTS = ["StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
                  "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                  "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"]
SERIES_DEFAULTS = ["Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
                   "NumberOfSeriesRelatedInstances"]
INSTANCE_DEFAULTS = ["SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "InstanceNumber", "Rows",
                     "Columns", "BitsAllocated", "NumberOfFrames"]
DEFAULTS = {archive_query.STUDY: STUDY_DEFAULTS, archive_query.SERIES: SERIES_DEFAULTS,
            archive_query.IMAGE: INSTANCE_DEFAULTS}

# Parameters that steer the search rather than match (PS3.18 8.3.3.1 accept, 8.3.4 query parameters).
CONTROL_PARAMETERS = {"includefield", "limit", "offset", "fuzzymatching", "accept"}

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_NUMBER_VRS = {"IS", "US", "UL", "SS", "SL", "SV", "UV"}
_ORDER = {
    archive_query.STUDY: ["-study_date", "-study_time", "-id"],
    archive_query.SERIES: ["study_id", "series_number", "id"],
    archive_query.IMAGE: ["series__study_id", "series_id", "instance_number", "id"],
}


class SearchError(Exception):
    """A search the archive cannot run: answered 400 with the message."""


@dataclass
class Search:
    """One QIDO-RS request, checked: level, identifier for archive.query, paging and what to return."""

    level: str
    identifier: Dataset
    limit: int
    offset: int
    include_all: bool = False
    warnings: list = field(default_factory=list)


def parse_search(level, parameters, path_uids):
    """Turn a request's query parameters (a QueryDict) and the UIDs of its path into a Search, or raise
    SearchError naming the parameter at fault."""
    for keyword, uid in path_uids.items():
        if not valid_uid(uid):
            raise SearchError(f"{keyword} {uid[:64]!r} is not a valid UID")
    include_all, returned = False, []
    for value in parameters.getlist("includefield"):
        for name in filter(None, (part.strip() for part in value.split(","))):
            if name == "all":
                include_all = True
            else:
                returned.append(_keyword(name, "includefield"))
    limit = min(_count(parameters, "limit", MAXIMUM_RESULTS), MAXIMUM_RESULTS)
    offset = _count(parameters, "offset", 0)
    warnings = []
    fuzzy = parameters.get("fuzzymatching", "false").lower()
    if fuzzy not in ("true", "false"):
        raise SearchError("fuzzymatching must be true or false")
    if fuzzy == "true":
        # PS3.18 8.3.4.4: a server without fuzzy matching says so and matches literally.
        warnings.append("The fuzzymatching parameter is not supported. Only literal matching has been performed.")

    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    matching = dict(path_uids)
    for name in parameters:
        if name in CONTROL_PARAMETERS:
            continue
        keyword = _keyword(name, "search")
        values = parameters.getlist(name)
        if len(values) > 1:
            raise SearchError(f"{name} is given more than once")
        matching[keyword] = values[0]
    # Relational search (PS3.18 10.6.1.2): any attribute of the query level or the levels above may match.
    matchable = archive_query.LEVELS[:archive_query.LEVELS.index(level) + 1]
    for keyword, value in matching.items():
        key = archive_query.KEYS.get(keyword)
        if key is None or key.kind == "count" or key.level not in matchable:
            raise SearchError(f"{keyword} is not a search attribute of this resource")
        if key.kind == "uid":
            value = value.replace(",", "\\")  # PS3.18 8.3.4.1: a list of UIDs is comma separated
        _add(identifier, keyword, value)

    returned_levels = _returned_levels(level, path_uids)
    wanted = [keyword for scope in returned_levels for keyword in DEFAULTS.get(scope, [])] + returned
    if include_all:
        wanted += [key.keyword for key in archive_query.KEYS.values()
                   if key.level in returned_levels and key.field != ""]
    for keyword in wanted:
        if keyword not in identifier:
            identifier.add_new(tag_for_keyword(keyword), dictionary_VR(keyword), None)
    return Search(level, identifier, limit, offset, include_all, warnings)


def _returned_levels(level, path_uids):
    # PS3.18 10.6.3.3.1: results carry the default attributes of the query level, and of the levels above it
    # that the path does not already name (all series: study attributes too).
    levels = archive_query.LEVELS
    if "SeriesInstanceUID" in path_uids:
        first = levels.index(archive_query.IMAGE)
    elif "StudyInstanceUID" in path_uids:
        first = levels.index(archive_query.SERIES)
    else:
        first = 0
    return levels[first:levels.index(level) + 1]


def _keyword(name, purpose):
    """A parameter name as a DICOM keyword: a keyword as is, or a tag as eight hex digits."""
    if "." in name:
        raise SearchError(f"{name}: sequence attributes are not supported in {purpose}")
    if _TAG.match(name):
        keyword = keyword_for_tag(Tag(int(name, 16)))
    else:
        keyword = name if tag_for_keyword(name) is not None else ""
    if not keyword:
        raise SearchError(f"{name} is not a known DICOM attribute")
    return keyword


def _count(parameters, name, default):
    value = parameters.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise SearchError(f"{name} must be a non-negative integer")
    return int(value)


def _add(identifier, keyword, value):
    vr = dictionary_VR(keyword)
    if vr in _NUMBER_VRS and value and value != "*":
        try:
            value = int(value)
        except ValueError:
            raise SearchError(f"{keyword} must be an integer, not {value[:16]!r}") from None
    identifier.add_new(tag_for_keyword(keyword), vr, value)


def run_search(search, base):
    """The DICOM JSON results of `search` for one page, whether more results follow, and the Patient ids
    behind them. One SQL query for the rows (and none per row)."""
    query = archive_query.parse_identifier(search.identifier, archive_query.STUDY_ROOT, hierarchical=False)
    queryset = archive_query.matching_queryset(query).order_by(*_ORDER[search.level])
    rows = list(queryset[search.offset:search.offset + search.limit + 1])
    more = len(rows) > search.limit
    results, patients = [], set()
    for match in rows[:search.limit]:
        patients.add(archive_query.study_of(match).patient_id)
        results.append(_result(search, query, match, base))
    return results, more, patients


def _result(search, query, match, base):
    dataset = archive_query.response(query, match)
    study = archive_query.study_of(match)
    if search.level == archive_query.STUDY:
        url = study_url(base, study.study_instance_uid)
    elif search.level == archive_query.SERIES:
        url = series_url(base, study.study_instance_uid, match.series_instance_uid)
    else:
        url = instance_url(base, study.study_instance_uid, match.series.series_instance_uid,
                           match.sop_instance_uid)
    dataset.RetrieveURL = url
    result = dataset_to_json(dataset)
    if search.include_all and search.level == archive_query.IMAGE:
        # includefield=all at instance level: every stored attribute, bulk data references left out.
        result = dict(sorted({**inline_header(match.header), **result}.items()))
    return result


def search_view(level):
    """The view for one QIDO-RS resource at `level` (path parameters: study, series)."""
    @dicomweb_endpoint("archive.view_instance")
    @require_GET
    def view(request, study=None, series=None):
        # PS3.18 8.3.3.1: an `accept` query parameter takes the place of the Accept header.
        if not _accepts_dicom_json(request.GET.get("accept", request.headers.get("Accept", ""))):
            return JsonResponse({"detail": "Search results are available as application/dicom+json only."},
                                status=406)
        path_uids = {}
        if study is not None:
            path_uids["StudyInstanceUID"] = study
        if series is not None:
            path_uids["SeriesInstanceUID"] = series
        audit = {"level": level, "study": study or "",
                 "keys": "; ".join(f"{name}={value}" for name, value in request.GET.items())}
        try:
            search = parse_search(level, request.GET, path_uids)
            results, more, patients = run_search(search, base_url(request))
        except (SearchError, archive_query.QueryError) as error:
            _audit(request, AuditOutcome.MINOR_FAILURE, set(), error=str(error), **audit)
            return JsonResponse({"detail": str(error)}, status=400)
        _audit(request, AuditOutcome.SUCCESS, patients, matches=len(results), **audit)
        warnings = list(search.warnings)
        if more:
            warnings.append("The number of results exceeded the maximum supported by the server. "
                            "Additional results can be requested.")
        headers = {}
        if warnings:
            host = request.get_host()
            headers["Warning"] = ", ".join(f'299 {host} "{text}"' for text in warnings)
        if not results:
            response = HttpResponse(status=204)  # PS3.18 10.6.3.2: no match, no content
            for name, value in headers.items():
                response[name] = value
            return response
        return dicom_json_response(results, **headers)
    return view


def _accepts_dicom_json(accept):
    if not accept.strip():
        return True
    for media_range in accept.split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type in ACCEPTABLE:
            return True
    return False


def _audit(request, outcome, patients, *, study, **detail):
    # PS3.15 A.5.3.3: a query is an Execute action; the patient is named when the results are all one patient's.
    patient = Patient.objects.filter(pk=next(iter(patients))).first() if len(patients) == 1 else None
    record_audit_event(
        AuditEventCode.QUERY, action="E", channel=AuditChannel.DICOMWEB, actor=request.user.get_username(),
        user=request.user, source_address=request.META.get("REMOTE_ADDR", ""), patient=patient, outcome=outcome,
        object_type="study" if study else "", object_id=study, **detail)


search_studies = search_view(archive_query.STUDY)
search_series = search_view(archive_query.SERIES)
search_instances = search_view(archive_query.IMAGE)
