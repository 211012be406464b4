"""Reading index values out of DICOM datasets safely: every value is text checked for its VR's limits."""
import datetime
import re

from pydicom.uid import UID

_DATE = re.compile(r"^\d{8}$")


def text(dataset, keyword, limit=64):
    """The value of a string attribute as text ('' when absent), cut to the column's length."""
    value = dataset.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or getattr(value, "VM", 1) > 1 and not isinstance(value, str):
        value = "\\".join(str(part) for part in value)
    return str(value).strip()[:limit]


def integer(dataset, keyword):
    value = dataset.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def dicom_date(dataset, keyword):
    """A DA value as 'YYYYMMDD', or '' when absent or malformed."""
    value = text(dataset, keyword, limit=8)
    return value if _DATE.match(value) else ""


def to_date(value):
    """'YYYYMMDD' -> datetime.date, or None."""
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date() if value else None
    except ValueError:
        return None


def valid_uid(value):
    """A UID that PS3.5 9.1 allows: digits and dots, no leading zeros, at most 64 characters."""
    return bool(value) and isinstance(value, str) and UID(value).is_valid
