"""Accession numbers: generated from RADIOLOGY_ACCESSION_FORMAT, unique, or brought by the EHR."""
import pytest

from radiology.config import ConfigError, env_accession_format
from tests.worklist.factories import make_order
from worklist import orders

pytestmark = pytest.mark.django_db


def test_generated_numbers_follow_the_format_and_count_up(settings):
    settings.ACCESSION_FORMAT = "ACC{year}{number:05d}"

    first, second = make_order(), make_order()

    year = first.created_at.year
    assert first.accession_number == f"ACC{year}00001"
    assert second.accession_number == f"ACC{year}00002"


def test_a_number_the_ehr_already_used_is_skipped(settings):
    settings.ACCESSION_FORMAT = "{number}"
    make_order(accession_number="1")

    assert make_order().accession_number == "2"


def test_an_accession_number_cannot_be_used_twice():
    make_order(accession_number="EHR123")

    with pytest.raises(orders.OrderError, match="EHR123 is already used"):
        make_order(accession_number="EHR123")


def test_each_order_gets_its_own_study_instance_uid():
    assert make_order().study_instance_uid != make_order().study_instance_uid


@pytest.mark.parametrize("pattern", ["ACC", "{year}", "{nope}", "VERY-LONG-PREFIX-{number:06d}"])
def test_a_format_without_a_number_or_too_long_is_a_configuration_error(monkeypatch, pattern):
    monkeypatch.setenv("RADIOLOGY_ACCESSION_FORMAT", pattern)

    with pytest.raises(ConfigError, match="RADIOLOGY_ACCESSION_FORMAT"):
        env_accession_format("RADIOLOGY_ACCESSION_FORMAT", "{number}")
