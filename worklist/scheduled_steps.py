"""What the Modality Worklist publishes, and which of it a worklist query matches (PS3.4 K.6.1.2.2).

worklist/dimse/modality_worklist.py turns a C-FIND identifier into matching values (keyword -> value text) and
calls `worklist_steps`; matching runs in SQL over ScheduledProcedureStep and its order, patient and station.

Published: the steps of orders a modality may still perform (OPEN_STATUSES) whose own status is SCHEDULED or
ARRIVED. A cancelled order, or one a modality has started (MPPS IN PROGRESS), drops out at once: the status is
read on every query.

Matching follows the archive's C-FIND engine (archive/query.py) and reuses its conditions: empty value or a
lone `*` is universal; `*` and `?` wildcards in text and names; backslash-separated values match any of them;
Person Names match ignoring case; AE titles, codes and IDs case-sensitively; a list of UIDs.

Dates and times are the station's local ones (settings.TIME_ZONE): the steps' start is stored in UTC. Scheduled
Procedure Step Start Date and Time given together are one combined date-time range (as PS3.4 C.2.2.2.5.2
describes and dcmtk's worklist SCP does): "20261128" with "0800-1200" is 08:00 to 12:00 of that day, and
"20261127-20261128" with "2000-0800" is 20:00 on the 27th to 08:00 on the 28th. A date alone covers whole days;
a time alone matches that time of day on any date.
"""
import datetime
import re

from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Concat, Upper
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from archive import query as archive_query
from archive.query import Key, QueryError
from radiology.models import Patient
from worklist.choices import OPEN_STATUSES, StepStatus
from worklist.models import ScheduledProcedureStep

# Step statuses a modality may still pick from its worklist.
PUBLISHED_STEP_STATUSES = (StepStatus.SCHEDULED, StepStatus.ARRIVED)

START_DATE = "ScheduledProcedureStepStartDate"
START_TIME = "ScheduledProcedureStepStartTime"
# The step's scheduled performing physician is not recorded: only universal matching can match its empty value.
PERFORMING_PHYSICIAN = "ScheduledPerformingPhysicianName"

# Matching keys (keyword -> path from ScheduledProcedureStep, kind as in archive.query.Key). Keys of the
# Scheduled Procedure Step Sequence item and of the top level share one namespace: their keywords differ.
MATCHING_KEYS = {
    # Scheduled Procedure Step Sequence item (PS3.4 Table K.6-1)
    "ScheduledStationAETitle": ("station_ae_title", "text"),
    "Modality": ("modality", "text"),
    "ScheduledProcedureStepID": ("step_id", "text"),
    "ScheduledProcedureStepStatus": ("status", "text"),
    "ScheduledProcedureStepLocation": ("station__location", "text"),
    "ScheduledStationName": ("station__name", "text"),
    # Requested procedure, imaging service request, patient
    "RequestedProcedureID": ("order__requested_procedure_id", "text"),
    "AccessionNumber": ("order__accession_number", "text"),
    "StudyInstanceUID": ("order__study_instance_uid", "uid"),
    "ReferringPhysicianName": ("order__referring_physician_name", "pn"),
    "PatientName": ("patient_name", "pn"),  # annotated: Family^Given as the worklist returns it
    "PatientID": ("order__patient__mrn", "text"),
    "IssuerOfPatientID": ("order__patient__issuer", "text"),
}
DATE_TIME_KEYS = (START_DATE, START_TIME)
SUPPORTED_KEYS = (*MATCHING_KEYS, *DATE_TIME_KEYS, PERFORMING_PHYSICIAN)

_NAME_PREFIX = re.compile(r"[A-Z0-9]+")
_TIME = re.compile(r"^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?$")
_DATE_KEY = Key(START_DATE, "", "", "date")


# The columns a worklist response is made of (worklist/dimse/modality_worklist.py _StepValues): read with the
# step in its one query, and no others, so that each match costs no further query and no unused conversions.
RESPONSE_FIELDS = (
    "start", "modality", "station_ae_title", "description", "step_id", "status", "order", "station",
    "order__accession_number", "order__referring_physician_name", "order__requested_procedure_id",
    "order__priority", "order__study_instance_uid", "order__reason", "order__patient", "order__procedure",
    "order__patient__family_name", "order__patient__given_name", "order__patient__mrn", "order__patient__issuer",
    "order__patient__birth_date", "order__patient__sex",
    "order__procedure__name", "order__procedure__code", "order__procedure__coding_scheme",
    "station__name", "station__location",
)


def published_steps():
    """Every step the worklist publishes, with what its response needs of its order, patient, procedure and
    station read in the same query."""
    return (ScheduledProcedureStep.objects
            .filter(status__in=PUBLISHED_STEP_STATUSES, order__status__in=OPEN_STATUSES)
            .select_related("order__patient", "order__procedure", "station")
            .only(*RESPONSE_FIELDS))


def worklist_steps(matching):
    """The published steps that `matching` (keyword -> value text, empty values left out) selects, earliest
    first, as a lazy iterator. Raises archive.query.QueryError for a value that cannot be matched."""
    steps = published_steps()
    conditions = Q()
    for keyword, value in matching.items():
        if keyword in MATCHING_KEYS:
            path, kind = MATCHING_KEYS[keyword]
            conditions &= _condition(keyword, path, kind, value)
        elif keyword == PERFORMING_PHYSICIAN and value.strip("*"):
            return iter(())  # a name asked for, none recorded
    conditions &= start_condition(matching.get(START_DATE, ""), matching.get(START_TIME, ""))
    if "PatientName" in matching:
        conditions &= _family_name_prefix_condition(matching["PatientName"])
        steps = steps.annotate(patient_name=Case(
            When(order__patient__given_name="", then=F("order__patient__family_name")),
            default=Concat(F("order__patient__family_name"), Value("^"), F("order__patient__given_name")),
            output_field=CharField()))
    return steps.filter(conditions).order_by("start", "pk").iterator(chunk_size=200)


def _family_name_prefix_condition(value):
    """A range on the upper-cased family name that every match of a single Patient Name value lies in ("FISC*"
    and "Fisch^Anna" both lie in FISC... and FISCH...): redundant with the wildcard match, but the database can
    answer it from the patients' name index (patient_name_upper_idx) instead of reading every published step.
    Only for a literal start of ASCII letters and digits, which sort the same in every collation."""
    if "\\" in value:
        return Q()
    prefix = _NAME_PREFIX.match(value.strip().upper())
    if prefix is None:
        return Q()
    start = prefix.group()
    after = start[:-1] + chr(ord(start[-1]) + 1)
    # As a subquery on patients: given a join, SQLite plans from the orders' status and reads them all.
    family_name = Upper(F("family_name"))
    patients = Patient.objects.filter(GreaterThanOrEqual(family_name, Value(start)),
                                      LessThan(family_name, Value(after)))
    return Q(order__patient_id__in=patients.values("pk"))


def _condition(keyword, path, kind, value):
    if kind == "uid":
        return archive_query._uid_condition(Key(keyword, "", path, "uid"), path, value)
    return archive_query._text_condition(path, value, case_sensitive=kind == "text")


# ---------------------------------------------------------------------------------------------------------
# Scheduled Procedure Step Start Date and Time

def start_condition(date_value, time_value):
    """The condition on `start` for the SPS Start Date and Time values (either may be empty)."""
    date_value, time_value = date_value.strip(), time_value.strip()
    if date_value == "*":
        date_value = ""
    if time_value == "*":
        time_value = ""
    if not date_value and not time_value:
        return Q()
    first_day, last_day = _date_range(date_value) if date_value else (None, None)
    earliest, latest = _time_range(time_value) if time_value else (None, None)
    if not date_value:
        # A time of day on any date; Django converts `start` to the current (local) time zone for __time.
        condition = Q()
        if earliest is not None:
            condition &= Q(start__time__gte=earliest)
        if latest is not None:
            condition &= Q(start__time__lte=latest)
        return condition
    condition = Q()
    if first_day is not None:
        condition &= Q(start__gte=_local(first_day, earliest or datetime.time.min))
    if last_day is not None:
        if latest is None:
            condition &= Q(start__lt=_local(last_day + datetime.timedelta(days=1), datetime.time.min))
        else:
            condition &= Q(start__lte=_local(last_day, latest))
    return condition


def _date_range(value):
    # PS3.4 C.2.2.2.5 range matching: D, D1-D2, D1-, -D2 (the archive's parser and its error).
    start, end = archive_query._date_bounds(_DATE_KEY, value)
    try:
        return (datetime.datetime.strptime(start, "%Y%m%d").date() if start else None,
                datetime.datetime.strptime(end, "%Y%m%d").date() if end else None)
    except ValueError:
        raise QueryError(f"{START_DATE}: no such date {value[:20]!r}"[:64]) from None


def _time_range(value):
    """(earliest, latest) datetime.time for T, T1-T2, T1-, -T2; the end is inclusive to its precision
    (-1200 includes 12:00:59.999999)."""
    start, _, end = value.partition("-") if "-" in value else (value, "", value)
    start, end = start.strip(), end.strip()
    if not start and not end:
        raise QueryError(f"{START_TIME}: bad time or range {value[:20]!r}"[:64])
    return (_time(start, value, latest=False) if start else None,
            _time(end, value, latest=True) if end else None)


def _time(text, value, *, latest):
    match = _TIME.match(text)
    if match is None:
        raise QueryError(f"{START_TIME}: bad time or range {value[:20]!r}"[:64])
    hour, minute, second, fraction = match.groups()
    filler = "59" if latest else "00"  # the missing components, to the start or the end of the precision
    if fraction is None:
        microsecond = 999999 if latest else 0
    else:
        microsecond = int(fraction.ljust(6, "9" if latest else "0"))
    try:
        return datetime.time(int(hour), int(minute or filler), int(second or filler), microsecond)
    except ValueError:
        raise QueryError(f"{START_TIME}: bad time or range {value[:20]!r}"[:64]) from None


def _local(day, time_of_day):
    """A date and time of the station's local time zone (settings.TIME_ZONE) as an aware datetime."""
    return timezone.make_aware(datetime.datetime.combine(day, time_of_day), timezone.get_default_timezone())
