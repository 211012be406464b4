"""Report template sections are checked before a template is saved."""
import pytest
from django.core.exceptions import ValidationError

from reporting.templates import check_sections

FINDINGS = {"key": "findings", "title": "Findings", "fields": [{"key": "size", "label": "Size", "type": "number",
                                                                  "unit": "mm"}]}


def test_a_well_formed_template_passes():
    assert check_sections([FINDINGS]) == [FINDINGS]


@pytest.mark.parametrize("sections, problem", [
    ([], "a list of sections"),
    ([{"key": "findings"}], "needs a key"),
    ([FINDINGS, FINDINGS], "used twice"),
    ([{**FINDINGS, "fields": [{"key": "x", "label": "X", "type": "colour"}]}], "unknown type"),
    ([{**FINDINGS, "fields": [{"key": "x", "label": "X", "type": "picklist"}]}], "needs options"),
    ([{"key": "bad key!", "title": "T"}], "needs a key"),
])
def test_a_malformed_template_is_refused_with_the_reason(sections, problem):
    with pytest.raises(ValidationError, match=problem):
        check_sections(sections)
