"""Finding and reading studies for the portal: study search, the series of a study, what to put in a zip.

These are the portal's rules for a person typing into a search form. DICOM C-FIND and QIDO-RS matching (every
attribute, every matching type of PS3.4 C.2.2.2) is archive/query.py's work.
"""
import datetime
import io
import re
import zipfile
from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q

from archive.models import Instance, Series, Study
from archive.query import WildcardIgnoringCase

_NAME_SEPARATOR = re.compile(r"\s*,\s*")
# Unnumbered series and instances last, on every database (SQLite and PostgreSQL sort NULL differently).
_SERIES_ORDER = (F("series_number").asc(nulls_last=True), "pk")
_INSTANCE_ORDER = (F("instance_number").asc(nulls_last=True), "pk")


def search_studies(*, patient_name="", patient_id="", accession_number="", date_from=None, date_to=None,
                   modality="", patient=None, queryset=None):
    """Studies matching every given criterion, newest first.

    `patient_name` matches the start of the name as received (family^given…), case-insensitively; `*` stands
    for any run of characters and `?` for one, and "Family, Given" is read as "Family^Given". `patient_id`
    and `accession_number` match exactly; the study date range includes both ends; `modality` is one of the
    modalities in the study; `patient` is a Patient record (its studies and those of records merged into it)."""
    studies = queryset if queryset is not None else Study.objects.all()
    patient_name = patient_name.strip()
    if patient_name:
        studies = studies.filter(_name_starts_with(patient_name))
    if patient_id.strip():
        studies = studies.filter(dicom_patient_id=patient_id.strip())
    if accession_number.strip():
        studies = studies.filter(accession_number=accession_number.strip())
    if date_from:
        studies = studies.filter(study_date__gte=_dicom_date(date_from))
    if date_to:
        studies = studies.filter(study_date__lte=_dicom_date(date_to)).exclude(study_date="")
    if modality:
        studies = studies.filter(_has_modality(modality))
    if patient is not None:
        studies = studies.filter(Q(patient=patient) | Q(patient__merged_into=patient))
    return studies.order_by("-study_date", "-study_time", "-pk")


def modalities_in_archive():
    """The modalities of the series in the archive, for a search form's choices."""
    return sorted(set(Series.objects.exclude(modality="").values_list("modality", flat=True).distinct()))


def series_of(study):
    """The study's series in series-number order, each with `has_images` (an instance with rows)."""
    with_rows = Instance.objects.filter(series=OuterRef("pk"), rows__isnull=False)
    return study.series.annotate(has_images=Exists(with_rows)).order_by(*_SERIES_ORDER)


def middle_instance(series):
    """The instance in the middle of the series (by instance number) that has pixel rows, or None."""
    images = series.instances.filter(rows__isnull=False).order_by(*_INSTANCE_ORDER)
    count = images.count()
    return images[count // 2] if count else None


@dataclass(frozen=True)
class ZipEntry:
    name: str
    storage_key: str
    file_size: int
    sop_instance_uid: str


def zip_entries(study):
    """The study's instances as zip entries named `<series>/<instance>.dcm` from series and instance numbers
    (or their positions when a number is missing or repeated), never from any text a modality sent."""
    entries = []
    series_names = set()
    for series_index, series in enumerate(study.series.order_by(*_SERIES_ORDER), start=1):
        folder = _unique_name(series.series_number, series_index, series_names)
        instance_names = set()
        instances = series.instances.order_by(*_INSTANCE_ORDER).only(
            "instance_number", "storage_key", "file_size", "sop_instance_uid")
        for instance_index, instance in enumerate(instances, start=1):
            name = _unique_name(instance.instance_number, instance_index, instance_names)
            entries.append(ZipEntry(f"{folder}/{name}.dcm", instance.storage_key, instance.file_size,
                                    instance.sop_instance_uid))
    return entries


def zip_stream(entries, storage, chunk_size=1 << 20):
    """Yield a zip archive of `entries` piece by piece: at most one chunk of one file is in memory at a time.

    zipfile writes to an unseekable stream with data descriptors after each entry, so nothing needs to be
    known up front; files are stored, not deflated (most pixel data is compressed already, and deflating
    uncompressed images would cost more CPU than the transfer it saves)."""
    return (piece for piece in _zip_pieces(entries, storage, chunk_size) if piece)


def _zip_pieces(entries, storage, chunk_size):
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=_ZIP_DATE)
            info.file_size = entry.file_size  # lets zipfile choose ZIP64 for entries over 4 GiB
            with storage.open(entry.storage_key) as source, archive.open(info, mode="w") as target:
                while chunk := source.read(chunk_size):
                    target.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


# Entries carry a fixed date: the archive's content, not the time of download, decides its bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class _Pipe(io.RawIOBase):
    """A write-only, unseekable stream whose written bytes are taken out by the generator that streams them."""

    def __init__(self):
        super().__init__()
        self._buffer = bytearray()

    def writable(self):
        return True

    def write(self, data):
        self._buffer += data
        return len(data)

    def take(self):
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _unique_name(number, index, used):
    """A file name part made of digits only: the number if it is free, else `<number>-<index>` / `x<index>`."""
    name = str(number) if number is not None else f"x{index}"
    if name in used:
        name = f"{name}-{index}"
    used.add(name)
    return name


def _name_starts_with(pattern):
    # A prefix: the pattern with an implied trailing "*", matched by the Q/R engine's wildcard lookup
    # (PS3.4 C.2.2.2.4: "*" any run of characters, "?" one character; names ignore case).
    pattern = _NAME_SEPARATOR.sub("^", pattern)
    return Q(WildcardIgnoringCase(F("patient_name"), pattern.rstrip("*") + "*"))


def _has_modality(modality):
    # Modalities In Study is a backslash-separated list: match whole values only ("CT" is not "CTX").
    return (Q(modalities_in_study=modality) | Q(modalities_in_study__startswith=modality + "\\")
            | Q(modalities_in_study__endswith="\\" + modality) | Q(modalities_in_study__contains=f"\\{modality}\\"))


def _dicom_date(value):
    return value.strftime("%Y%m%d") if isinstance(value, datetime.date) else str(value)
