"""`manage.py check --deploy` flags only what the TLS-terminating reverse proxy takes care of."""
import re

from tests.platform_process import manage, platform_env

HTTPS_CHECKS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def deploy_check_ids(env):
    result = manage(env, "check", "--deploy", check=False)
    return set(re.findall(r"\((\w+\.[WE]\d+)\)", result.stdout + result.stderr))


def test_plain_http_behind_a_proxy_reports_only_https_settings(tmp_path):
    assert deploy_check_ids(platform_env(tmp_path, DJANGO_DEBUG="0")) == HTTPS_CHECKS


def test_with_https_declared_the_deploy_check_is_clean(tmp_path):
    assert deploy_check_ids(platform_env(tmp_path, DJANGO_DEBUG="0", RADIOLOGY_HTTPS="1")) == set()
