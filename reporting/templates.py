"""Report templates: the shape of `ReportTemplate.sections`, checked before a template is saved."""
from django.core.exceptions import ValidationError

from reporting.choices import FieldType


def check_sections(sections):
    """Raise ValidationError naming the first problem in a template's sections, else return them."""
    if not isinstance(sections, list) or not sections:
        raise ValidationError("a template has a list of sections")
    section_keys, field_keys = set(), set()
    for number, section in enumerate(sections, start=1):
        if not isinstance(section, dict) or not _is_key(section.get("key")) or not section.get("title"):
            raise ValidationError(f"section {number} needs a key (letters, digits, _) and a title")
        if section["key"] in section_keys:
            raise ValidationError(f"section key {section['key']} is used twice")
        section_keys.add(section["key"])
        for field in section.get("fields", []):
            if not isinstance(field, dict) or not _is_key(field.get("key")) or not field.get("label"):
                raise ValidationError(f"a field of section {section['key']} needs a key and a label")
            if field["key"] in field_keys:
                raise ValidationError(f"field key {field['key']} is used twice")
            field_keys.add(field["key"])
            if field.get("type", FieldType.TEXT) not in FieldType.values:
                raise ValidationError(f"field {field['key']} has an unknown type {field.get('type')!r} "
                                      f"(one of {', '.join(FieldType.values)})")
            if field.get("type") == FieldType.PICKLIST and not field.get("options"):
                raise ValidationError(f"pick list {field['key']} needs options")
    return sections


def _is_key(value):
    return isinstance(value, str) and value.replace("_", "").isalnum() and value.isascii()
