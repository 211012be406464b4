"""Showing DICOM values to people: dates, times, person names and multi-valued text.

The filters return plain strings; Django's autoescaping still applies to them in the templates."""
import re

from django import template

register = template.Library()

_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?")


@register.filter
def dicom_date(value):
    """DA 'YYYYMMDD' as 'YYYY-MM-DD'; anything else unchanged."""
    match = _DATE.match(value or "")
    return "-".join(match.groups()) if match else (value or "")


@register.filter
def dicom_time(value):
    """TM 'HHMMSS.FFFFFF' as 'HH:MM:SS' (or 'HH:MM' when the seconds are not given)."""
    match = _TIME.match(value or "")
    return ":".join(part for part in match.groups() if part) if match else (value or "")


@register.filter
def person_name(value):
    """PN 'Family^Given^Middle^Prefix^Suffix' (alphabetic group) as 'Family, Given Middle'."""
    alphabetic = (value or "").split("=")[0]
    family, given, middle, *_ = alphabetic.split("^") + ["", "", ""]
    first_names = " ".join(part for part in (given, middle) if part)
    return f"{family}, {first_names}" if family and first_names else family or first_names


@register.filter
def multi_value(value):
    """A backslash-separated multi-valued attribute as 'A, B'."""
    return ", ".join(part for part in (value or "").split("\\") if part)
