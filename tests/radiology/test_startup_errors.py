"""An invalid environment value stops start-up with one clear line, not a traceback."""
import pytest

from tests.platform_process import manage, platform_env


@pytest.mark.parametrize("variable, value, message", [
    ("RADIOLOGY_HTTP_PORT", "eighty", "RADIOLOGY_HTTP_PORT must be a whole number (got 'eighty')"),
    ("DATABASE_URL", "postgres//nohost", "DATABASE_URL must look like postgres://"),
    ("RADIOLOGY_DICOM_OPEN", "perhaps", "RADIOLOGY_DICOM_OPEN must be 0 or 1"),
])
def test_a_bad_variable_stops_serve_with_one_line(tmp_path, variable, value, message):
    result = manage(platform_env(tmp_path, **{variable: value}), "serve", check=False)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: ")
    assert message in line
