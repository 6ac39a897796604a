"""A ``policy.yaml`` overrides the rules in code, with real Keystone tokens."""

import pytest

from cloudkitty.policies import summary as summary_policies
from cloudkitty.tests.functional.keystone import conftest


@pytest.fixture(scope='module')
def admin_only_summary_api(keystone, template_db, tmp_path_factory):
    directory = tmp_path_factory.mktemp('policy-api')
    policy_file = directory / 'policy.yaml'
    policy_file.write_text(
        f'"{summary_policies.GET_SUMMARY}": "rule:admin_api"\n')
    with conftest.serve_api(directory, template_db, keystone,
                            policy_file=policy_file) as url:
        yield url


def test_summary_made_admin_only_refuses_readers(admin_only_summary_api,
                                                 keystone, ids):
    reader = conftest.Caller(admin_only_summary_api, keystone, 'reader_a')
    response = reader.get('/v2/summary')
    assert response.status_code == 403
    assert summary_policies.GET_SUMMARY in response.json()['message']
    # The other rules keep their defaults.
    assert reader.get('/v1/report/total').json() == conftest.TOTALS['A']
    admin = conftest.Caller(admin_only_summary_api, keystone, 'admin')
    rows = admin.get('/v2/summary', groupby='project_id',
                     response_format='object').json()['results']
    assert {row['project_id'] for row in rows} == {ids['A'], ids['B']}


def test_without_the_file_readers_get_their_summary(as_user, ids):
    response = as_user('reader_a').get('/v2/summary', groupby='project_id',
                                       response_format='object')
    assert response.status_code == 200, response.text
    assert [(row['project_id'], str(row['rate']))
            for row in response.json()['results']] == [
        (ids['A'], conftest.TOTALS['A'])]
