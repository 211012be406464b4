"""Query matching over the archive index: C-FIND identifiers in, matching index rows and response datasets out.

One engine for DICOM C-FIND, C-MOVE/C-GET selection and DICOMweb QIDO-RS. Matching follows PS3.4 C.2.2.2 and
runs in SQL: each key of the identifier becomes a condition on a column of Study, Series or Instance, and the
rows are read with `.iterator()`, so no query holds the archive in memory.

Rules (PS3.4 C.2.2.2), with our choices where the standard leaves one:
- empty value: universal matching (the key is only returned); a lone `*` is universal matching too;
- single value: exact, case-sensitive; except Person Name (PN) keys, which match case-insensitively as most
  archives do, because modalities and worklists disagree on the case of names;
- list of UID: backslash-separated UIDs match any of them; other text keys with several values match any too
  (PS3.4 C.2.2.2.8 multiple value matching);
- wildcards `*` (any run of characters) and `?` (one character) in text and PN keys, never in UIDs, dates,
  times or numbers; `%`, `_` and the escape character are matched literally;
- range matching for dates (`20200101-`, `-20201231`, `20200101-20201231`) and times (`0800-1200`, the end
  inclusive to its precision: `-1200` includes 12:00:59.999999); empty stored values never match a range;
- combined date and time range matching (PS3.4 C.2.2.2.5.2) when the caller asks for it (the C-FIND handler
  does when the SCU negotiated it): StudyDate+StudyTime become one datetime range;
- ModalitiesInStudy matches when any series of the study has a matching modality.

Hierarchical queries (PS3.4 C.4.1.2.1, the default for C-FIND): a query below the top level of its information
model must carry a single-value unique key for every level above it. Keys of higher levels restrict the
match as well; keys of lower levels are returned empty. Relational queries (QIDO-RS) drop the unique key rule.
"""
import itertools
import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import BigIntegerField, Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Upper
from django.db.models.lookups import Exact, Lookup
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.valuerep import STR_VR

from archive import status
from archive.models import Instance, Series, Study

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
LEVELS = (PATIENT, STUDY, SERIES, IMAGE)

PATIENT_ROOT = "patient"
STUDY_ROOT = "study"
MODEL_LEVELS = {PATIENT_ROOT: LEVELS, STUDY_ROOT: LEVELS[1:]}

UNIQUE_KEYS = {PATIENT: "PatientID", STUDY: "StudyInstanceUID", SERIES: "SeriesInstanceUID",
               IMAGE: "SOPInstanceUID"}

# Keys that steer the query rather than match (PS3.4 C.4.1.1.3); the response sets its own values for them.
CONTROL_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "TimezoneOffsetFromUTC",
                "QueryRetrieveView"}


class QueryError(Exception):
    """An identifier the archive cannot match: `status` is the DICOM failure to answer, `comment` says why
    (sent as ErrorComment, at most 64 characters)."""

    def __init__(self, comment, code=status.DATASET_MISMATCH):
        super().__init__(comment)
        self.status = code
        self.comment = comment


@dataclass(frozen=True)
class Key:
    keyword: str
    level: str
    field: str   # column of the level's own model (Study for PATIENT and STUDY, Series, Instance)
    kind: str    # uid, text, pn, date, time, number, modalities, or count (returned, never matched)


KEYS = {key.keyword: key for key in [
    Key("PatientName", PATIENT, "patient_name", "pn"),
    Key("PatientID", PATIENT, "dicom_patient_id", "text"),
    Key("IssuerOfPatientID", PATIENT, "issuer_of_patient_id", "text"),
    Key("PatientBirthDate", PATIENT, "patient_birth_date", "date"),
    Key("PatientSex", PATIENT, "patient_sex", "text"),
    Key("NumberOfPatientRelatedStudies", PATIENT, "", "count"),
    Key("NumberOfPatientRelatedSeries", PATIENT, "", "count"),
    Key("NumberOfPatientRelatedInstances", PATIENT, "", "count"),
    Key("StudyInstanceUID", STUDY, "study_instance_uid", "uid"),
    Key("StudyDate", STUDY, "study_date", "date"),
    Key("StudyTime", STUDY, "study_time", "time"),
    Key("AccessionNumber", STUDY, "accession_number", "text"),
    Key("StudyID", STUDY, "study_id", "text"),
    Key("ReferringPhysicianName", STUDY, "referring_physician_name", "pn"),
    Key("StudyDescription", STUDY, "study_description", "text"),
    Key("ModalitiesInStudy", STUDY, "modalities_in_study", "modalities"),
    Key("NumberOfStudyRelatedSeries", STUDY, "number_of_series", "count"),
    Key("NumberOfStudyRelatedInstances", STUDY, "number_of_instances", "count"),
    Key("SeriesInstanceUID", SERIES, "series_instance_uid", "uid"),
    Key("Modality", SERIES, "modality", "text"),
    Key("SeriesNumber", SERIES, "series_number", "number"),
    Key("SeriesDescription", SERIES, "series_description", "text"),
    Key("BodyPartExamined", SERIES, "body_part_examined", "text"),
    Key("SeriesDate", SERIES, "series_date", "date"),
    Key("SeriesTime", SERIES, "series_time", "time"),
    Key("NumberOfSeriesRelatedInstances", SERIES, "number_of_instances", "count"),
    Key("SOPInstanceUID", IMAGE, "sop_instance_uid", "uid"),
    Key("SOPClassUID", IMAGE, "sop_class_uid", "uid"),
    Key("InstanceNumber", IMAGE, "instance_number", "number"),
    Key("Rows", IMAGE, "rows", "number"),
    Key("Columns", IMAGE, "columns", "number"),
    Key("NumberOfFrames", IMAGE, "number_of_frames", "number"),
]}

# Date and time keys matched as one datetime range when combined matching is asked for (PS3.4 C.2.2.2.5.2).
DATE_TIME_PAIRS = [("StudyDate", "StudyTime"), ("SeriesDate", "SeriesTime")]

_DEPTH = {PATIENT: 0, STUDY: 0, SERIES: 1, IMAGE: 2}
_PATH_UP = ["", "study__", "series__study__"]  # from a level's model up to Study
_MODEL = {PATIENT: Study, STUDY: Study, SERIES: Series, IMAGE: Instance}
_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


@dataclass
class Query:
    """A checked identifier: the level, the keys to match (keyword -> value text) and the keys to return."""

    level: str
    model: str
    matching: dict
    requested: list      # the identifier's elements (tag, VR, keyword) in order, control keys excluded
    character_set: str = ""


def parse_identifier(identifier, model, *, hierarchical=True):
    """Check a C-FIND identifier against the information model and return a Query, or raise QueryError."""
    level = _level(identifier, model)
    matching, requested = {}, []
    for element in identifier:
        keyword = element.keyword or keyword_for_tag(element.tag)
        if element.tag.group in (0x0000, 0x0002) or keyword in CONTROL_KEYS:
            continue
        requested.append((element.tag, _vr(element), keyword))
        key = KEYS.get(keyword)
        if key is None or key.kind == "count" or _below(key.level, level):
            continue  # returned (empty when unknown), never matched: PS3.4 C.2.2.1.3 unsupported keys
        value = _text_value(element)
        if value:
            matching[keyword] = value
    if hierarchical:
        _check_unique_keys(level, model, matching)
    return Query(level, model, matching, requested, _character_set(identifier))


def parse_retrieve_identifier(identifier, model):
    """Check a C-MOVE / C-GET identifier (PS3.4 C.4.2.1.4): the level, the unique key of that level (one value
    or a list of UIDs) and single-value unique keys of the levels above; nothing else may restrict."""
    level = _level(identifier, model)
    matching = {}
    for element in identifier:
        keyword = element.keyword or keyword_for_tag(element.tag)
        if element.tag.group in (0x0000, 0x0002) or keyword in CONTROL_KEYS:
            continue
        value = _text_value(element)
        if not value:
            continue
        if keyword not in UNIQUE_KEYS.values() and keyword != "IssuerOfPatientID":
            raise QueryError(f"retrieve by unique keys only, not {keyword}"[:64])
        matching[keyword] = value
    if not matching.get(UNIQUE_KEYS[level]):
        raise QueryError(f"{UNIQUE_KEYS[level]} is required at {level} level")
    if level == PATIENT and ("\\" in matching["PatientID"] or _has_wildcard(matching["PatientID"])):
        raise QueryError("PatientID must be a single value")
    _check_unique_keys(level, model, matching)
    for keyword, value in matching.items():
        if keyword != "PatientID" and keyword != "IssuerOfPatientID" and _has_wildcard(value):
            raise QueryError(f"no wildcards in {keyword}")
    return Query(level, model, matching, [], _character_set(identifier))


def find(identifier, model, *, hierarchical=True, combine_date_time=False):
    """The response datasets for a C-FIND identifier, one per match, lazily. Raises QueryError."""
    query = parse_identifier(identifier, model, hierarchical=hierarchical)
    for match in matches(query, combine_date_time=combine_date_time):
        yield response(query, match)


def matches(query, *, combine_date_time=False):
    """The index rows that match `query`, lazily: Study rows (STUDY), Series (SERIES), Instance (IMAGE), or a
    PatientMatch per patient (PATIENT)."""
    queryset = matching_queryset(query, combine_date_time=combine_date_time)
    if query.level == PATIENT:
        return _patients(queryset)
    return queryset.iterator(chunk_size=500)


def matching_queryset(query, *, combine_date_time=False):
    """The queryset of the query level's model with every matching condition applied (not evaluated)."""
    level = query.level
    conditions = Q()
    handled = set()
    if combine_date_time:
        for date_keyword, time_keyword in DATE_TIME_PAIRS:
            if date_keyword in query.matching and time_keyword in query.matching:
                conditions &= _combined_date_time(
                    level, KEYS[date_keyword], query.matching[date_keyword],
                    KEYS[time_keyword], query.matching[time_keyword])
                handled |= {date_keyword, time_keyword}
    for keyword, value in query.matching.items():
        if keyword not in handled:
            conditions &= _condition(level, KEYS[keyword], value)
    queryset = _MODEL[level].objects.filter(conditions)
    if level == SERIES:
        queryset = queryset.select_related("study")
    elif level == IMAGE:
        queryset = queryset.select_related("series__study")
        if all(keyword in KEYS for _, _, keyword in query.requested):
            queryset = queryset.defer("header")
    elif level == PATIENT:
        # One patient's studies next to each other, latest first (see _patients); studies without a Patient ID
        # apart per linked Patient record.
        queryset = queryset.annotate(
            id_less_patient=Case(When(dicom_patient_id="", then=F("patient_id")), default=Value(0),
                                 output_field=BigIntegerField()),
        ).order_by("dicom_patient_id", "issuer_of_patient_id", "id_less_patient", "-study_date", "-study_time",
                   "-id")
    return queryset


def retrieve_instances(query):
    """The instances a C-MOVE / C-GET `query` (from parse_retrieve_identifier) selects, as a queryset ordered
    by study, series and instance number, with only the columns a sub-operation needs."""
    conditions = Q()
    for keyword, value in query.matching.items():
        conditions &= _condition(IMAGE, KEYS[keyword], value)
    return (Instance.objects.filter(conditions)
            .only("id", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "storage_key")
            .order_by("series__study_id", "series_id", "instance_number", "id"))


@dataclass
class PatientMatch:
    """One patient of a PATIENT level match: demographics of the latest matching study, counts summed."""

    study: Study
    studies: int
    series: int
    instances: int


def _patients(queryset):
    # Patient Root PATIENT level: studies grouped by Patient ID + issuer (PS3.4 C.6.1.1.2); studies without a
    # Patient ID stay apart per linked Patient record.
    def patient_of(study):
        return study.dicom_patient_id, study.issuer_of_patient_id, study.id_less_patient

    for _, studies in itertools.groupby(queryset.iterator(chunk_size=500), key=patient_of):
        latest = next(studies)
        match = PatientMatch(latest, 1, latest.number_of_series, latest.number_of_instances)
        for study in studies:
            match.studies += 1
            match.series += study.number_of_series
            match.instances += study.number_of_instances
        yield match


def study_of(match):
    """The Study row behind any match (for audit and access decisions)."""
    if isinstance(match, PatientMatch):
        return match.study
    if isinstance(match, Study):
        return match
    if isinstance(match, Series):
        return match.study
    return match.series.study


def response(query, match):
    """The C-FIND response dataset for one match: exactly the requested keys, plus QueryRetrieveLevel and
    RetrieveAETitle (PS3.4 C.4.1.1.3.2), and SpecificCharacterSet when a value is not plain ASCII."""
    dataset = Dataset()
    header = None
    non_ascii = False
    for tag, vr, keyword in query.requested:
        value = _value(query.level, keyword, match)
        if value is _FROM_HEADER:
            if header is None:
                header = _header_dataset(match)
            if tag in header:
                dataset.add(header[tag])
                continue
            value = None
        if isinstance(value, str) and not value.isascii():
            non_ascii = True
        if value in ("", None):
            value = "" if vr in STR_VR else None  # PS3.4 C.2.2.1.3: a zero-length value
        dataset.add_new(tag, vr, value)
    dataset.QueryRetrieveLevel = query.level
    dataset.RetrieveAETitle = settings.DICOM_AET
    if non_ascii:
        # Index values are Unicode text: answer them in UTF-8 (PS3.5 6.1.2.3, ISO_IR 192).
        dataset.SpecificCharacterSet = "ISO_IR 192"
    elif query.character_set:
        dataset.SpecificCharacterSet = query.character_set
    return dataset


_FROM_HEADER = object()


def _value(level, keyword, match):
    if keyword == "InstanceAvailability":
        return "ONLINE"
    key = KEYS.get(keyword)
    if key is None or _below(key.level, level):
        return _FROM_HEADER if level == IMAGE else None
    if isinstance(match, PatientMatch):
        counts = {"NumberOfPatientRelatedStudies": match.studies, "NumberOfPatientRelatedSeries": match.series,
                  "NumberOfPatientRelatedInstances": match.instances}
        if keyword in counts:
            return counts[keyword]
        return getattr(match.study, key.field) if key.level == PATIENT else None
    if key.field == "":
        return None  # patient counts asked at a lower level: not a key of that level
    row = {STUDY: study_of(match), PATIENT: study_of(match)}.get(key.level)
    if row is None:
        row = match if key.level == level else match.series
    return getattr(row, key.field)


def _header_dataset(instance):
    """The stored header as a Dataset, without the values kept as bulk data references."""
    inline = {tag: element for tag, element in (instance.header or {}).items() if "BulkDataURI" not in element}
    try:
        return Dataset.from_json(inline)
    except (ValueError, TypeError, KeyError):
        return Dataset()


# ---------------------------------------------------------------------------------------------------------
# Identifier checks

def _level(identifier, model):
    if model not in MODEL_LEVELS:
        raise ValueError(f"unknown information model {model!r}")
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if not level:
        raise QueryError("QueryRetrieveLevel is missing")
    if level not in MODEL_LEVELS[model]:
        raise QueryError(f"level {level[:16]} not in the {model} root model")
    return level


def _check_unique_keys(level, model, matching):
    # PS3.4 C.4.1.2.1 hierarchical search: one value of the unique key of every level above the query level.
    levels = MODEL_LEVELS[model]
    for upper in levels[:levels.index(level)]:
        keyword = UNIQUE_KEYS[upper]
        value = matching.get(keyword, "")
        if not value or "\\" in value or _has_wildcard(value):
            raise QueryError(f"{keyword} (one value) is required below {upper} level")


def _text_value(element):
    if element.VR == "SQ":
        return ""  # sequence matching is not supported: the key is returned empty
    try:
        value = element.value
    except Exception:  # noqa: BLE001 - a value pydicom cannot decode (bad character set, bad VR)
        raise QueryError(f"{element.keyword or element.tag} cannot be decoded") from None
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(part).strip() for part in value)
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise QueryError(f"{element.keyword or element.tag} cannot be decoded") from None
    return str(value).strip()


def _vr(element):
    if element.VR in ("UN", None, ""):
        try:
            return dictionary_VR(element.tag)
        except KeyError:
            return "UN"
    return element.VR


def _character_set(identifier):
    value = identifier.get("SpecificCharacterSet")
    if not value:
        return ""
    return "\\".join(value) if not isinstance(value, str) else value


def _below(level, query_level):
    return LEVELS.index(level) > LEVELS.index(query_level)


def _has_wildcard(value):
    return "*" in value or "?" in value


# ---------------------------------------------------------------------------------------------------------
# Matching conditions

def _path(level, key):
    """The ORM path from the query level's model to a key's column."""
    if key.level in (PATIENT, STUDY):
        return _PATH_UP[_DEPTH[level]] + key.field
    return ("series__" if _DEPTH[level] - _DEPTH[key.level] == 1 else "") + key.field


def _condition(level, key, value):
    path = _path(level, key)
    if key.kind == "uid":
        return _uid_condition(key, path, value)
    if key.kind in ("text", "pn"):
        return _text_condition(path, value, case_sensitive=key.kind == "text")
    if key.kind == "date":
        return _date_condition(key, path, value)
    if key.kind == "time":
        return _time_condition(key, path, value)
    if key.kind == "number":
        return _number_condition(key, path, value)
    if key.kind == "modalities":
        return _modalities_condition(level, value)
    raise ValueError(f"{key.keyword} is not a matching key")


def _uid_condition(key, path, value):
    # PS3.4 C.2.2.2.2 list of UID matching; wildcards do not apply to UIDs.
    if value == "*":
        return Q()
    uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
    if any(_has_wildcard(uid) for uid in uids):
        raise QueryError(f"no wildcards in {key.keyword}")
    return Q(**{path: uids[0]}) if len(uids) == 1 else Q(**{f"{path}__in": uids})


def _text_condition(path, value, *, case_sensitive):
    values = [part.strip() for part in value.split("\\")]
    if any(part == "*" for part in values):
        return Q()  # PS3.4 C.2.2.2.4: a lone * matches everything, empty values included
    condition = Q()
    for part in values:
        if not case_sensitive:
            part = part.rstrip("^=")  # trailing empty name components carry no meaning (PS3.5 6.2.1)
        if _has_wildcard(part):
            lookup = Wildcard if case_sensitive else WildcardIgnoringCase
            condition |= Q(lookup(F(path), part))
        elif case_sensitive:
            condition |= Q(**{path: part})
        else:
            condition |= Q(Exact(Upper(F(path)), Upper(Value(part))))
    return condition


def _date_bounds(key, value):
    # PS3.4 C.2.2.2.5 range matching: D, D1-D2, D1-, -D2.
    if "-" in value:
        start, _, end = value.partition("-")
    else:
        start = end = value
    start, end = start.strip(), end.strip()
    if (not start and not end) or any(part and not _DATE.match(part) for part in (start, end)):
        raise QueryError(f"{key.keyword}: bad date or range {value[:20]!r}"[:64])
    return start or None, end or None


def _date_condition(key, path, value):
    start, end = _date_bounds(key, value)
    if start == end:
        return Q(**{path: start})
    condition = ~Q(**{path: ""})
    if start:
        condition &= Q(**{f"{path}__gte": start})
    if end:
        condition &= Q(**{f"{path}__lte": end})
    return condition


def _time_bounds(key, value):
    """(lowest, highest) strings for comparing stored TM text lexically: the start with trailing zeros
    dropped (10:00 is '1'), the end filled with nines to its precision (12:00 is '120099.999999')."""
    start, _, end = value.partition("-") if "-" in value else (value, "", value)
    start, end = start.strip(), end.strip()
    if (not start and not end) or any(part and not _TIME.match(part) for part in (start, end)):
        raise QueryError(f"{key.keyword}: bad time or range {value[:20]!r}"[:64])
    low = start.rstrip("0.") if start else None
    if end:
        high = end + "9" * (6 - len(end)) + ".999999" if len(end) <= 6 else end + "9" * (13 - len(end))
    else:
        high = None
    return low, high


def _time_condition(key, path, value):
    low, high = _time_bounds(key, value)
    condition = ~Q(**{path: ""})
    if low is not None:
        condition &= Q(**{f"{path}__gte": low})
    if high is not None:
        condition &= Q(**{f"{path}__lte": high})
    return condition


def _combined_date_time(level, date_key, date_value, time_key, time_value):
    # PS3.4 C.2.2.2.5.2: D1-D2 with T1-T2 means from D1 T1 to D2 T2.
    date_path, time_path = _path(level, date_key), _path(level, time_key)
    start_date, end_date = _date_bounds(date_key, date_value)
    low, high = _time_bounds(time_key, time_value)
    condition = ~Q(**{date_path: ""})
    if start_date:
        after_start = Q(**{f"{date_path}__gt": start_date})
        on_start = Q(**{date_path: start_date})
        if low is not None:
            on_start &= Q(**{f"{time_path}__gte": low})
        condition &= after_start | on_start
    if end_date:
        before_end = Q(**{f"{date_path}__lt": end_date})
        on_end = Q(**{date_path: end_date}) & ~Q(**{time_path: ""})
        if high is not None:
            on_end &= Q(**{f"{time_path}__lte": high})
        condition &= before_end | on_end
    return condition


def _number_condition(key, path, value):
    try:
        return Q(**{path: int(value)})
    except ValueError:
        raise QueryError(f"{key.keyword} must be a number, not {value[:16]!r}"[:64]) from None


def _modalities_condition(level, value):
    # A study matches when any of its series has one of the modalities asked for (PS3.4 C.6.2.1.2).
    study_ref = OuterRef({PATIENT: "id", STUDY: "id", SERIES: "study_id", IMAGE: "series__study_id"}[level])
    series = Series.objects.filter(study_id=study_ref).filter(
        _text_condition("modality", value, case_sensitive=True))
    return Q(Exists(series))


class Wildcard(Lookup):
    """PS3.4 C.2.2.2.4 wildcard matching, case-sensitive: `*` any run of characters, `?` one character,
    everything else literal. LIKE with an escape character; SQLite's LIKE ignores case, so GLOB there."""

    lookup_name = "dicom_wildcard"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} LIKE %s ESCAPE '\\'", [*params, like_pattern(self.rhs)]

    def as_sqlite(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} GLOB %s", [*params, glob_pattern(self.rhs)]


class WildcardIgnoringCase(Wildcard):
    """Wildcard matching for Person Names: both sides upper-cased by the database."""

    lookup_name = "dicom_wildcard_ignoring_case"

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"UPPER({lhs}) LIKE UPPER(%s) ESCAPE '\\'", [*params, like_pattern(self.rhs)]

    def as_sqlite(self, compiler, connection):
        return Wildcard.as_sql(self, compiler, connection)  # SQLite's LIKE already ignores (ASCII) case


def like_pattern(value):
    """A DICOM wildcard value as a LIKE pattern with backslash as the escape character."""
    out = []
    for char in value:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def glob_pattern(value):
    """A DICOM wildcard value as an SQLite GLOB pattern: `*` and `?` are GLOB's own; `[` is the only other
    special character outside a bracket expression."""
    return value.replace("[", "[[]")
