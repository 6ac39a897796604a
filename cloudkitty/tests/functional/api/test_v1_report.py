"""``/v1/report``: tenants, total, summary."""

import pytest

from cloudkitty.tests.functional.api import conftest

pytestmark = pytest.mark.usefixtures('rated')


def test_tenants(app):
    assert sorted(app.get('/v1/report/tenants').json) == ['p1', 'p2']


def test_tenants_of_an_empty_window(app):
    assert app.get('/v1/report/tenants',
                   params={'begin': '2001-01-01', 'end': '2001-02-01'}
                   ).json == []


def test_total_is_a_decimal_string(app):
    # p1: 1.5 + 0.25 + 1.5; p2: 1.25
    assert app.get('/v1/report/total').json == '4.5'
    assert app.get('/v1/report/total',
                   params={'tenant_id': 'p2'}).json == '1.25'
    assert app.get('/v1/report/total',
                   params={'service': 'image.size'}).json == '0.25'


def test_total_of_nothing_is_zero(app):
    assert app.get('/v1/report/total', params={'tenant_id': 'p9'}).json == '0'


def test_total_bad_date(app):
    response = app.get('/v1/report/total', params={'begin': 'yesterday-ish'},
                       status=400)
    assert 'begin' in response.json['faultstring']


def test_total_end_before_begin(app):
    response = app.get('/v1/report/total', params={
        'begin': '2020-02-01', 'end': '2020-01-01'}, status=400)
    assert 'before begin' in response.json['faultstring']


def test_summary_ungrouped_is_all(app):
    summary = app.get('/v1/report/summary').json['summary']
    assert len(summary) == 1
    row = summary[0]
    assert (row['tenant_id'], row['res_type'], row['rate']) == \
        ('ALL', 'ALL', '4.5')
    start = conftest.at(1)
    assert row['begin'] == start.replace(tzinfo=None).isoformat()


def test_summary_grouped(app):
    summary = app.get('/v1/report/summary',
                      params={'groupby': 'tenant_id,res_type'}).json['summary']
    rows = {(r['tenant_id'], r['res_type']): r['rate'] for r in summary}
    assert rows == {('p1', 'cpu'): '3', ('p1', 'image.size'): '0.25',
                    ('p2', 'cpu'): '1.25'}


def test_summary_by_type_of_one_tenant(app):
    summary = app.get('/v1/report/summary', params={
        'groupby': 'res_type', 'tenant_id': 'p1'}).json['summary']
    assert {(r['tenant_id'], r['res_type'], r['rate']) for r in summary} == {
        ('ALL', 'cpu', '3'), ('ALL', 'image.size', '0.25')}


def test_summary_unknown_groupby(app):
    response = app.get('/v1/report/summary', params={'groupby': 'colour'},
                       status=400)
    assert 'colour' in response.json['faultstring']


def test_reader_gets_own_total(keystone_app):
    assert keystone_app.get('/v1/report/total',
                            headers=conftest.reader('p2')).json == '1.25'


def test_reader_cannot_see_another_tenant(keystone_app):
    keystone_app.get('/v1/report/total', params={'tenant_id': 'p1'},
                     headers=conftest.reader('p2'), status=403)
    keystone_app.get('/v1/report/summary', params={'all_tenants': 'true'},
                     headers=conftest.reader('p2'), status=403)


def test_reader_summary_is_own(keystone_app):
    summary = keystone_app.get('/v1/report/summary',
                               params={'groupby': 'tenant_id'},
                               headers=conftest.reader('p2')).json['summary']
    assert [(r['tenant_id'], r['rate']) for r in summary] == \
        [('p2', '1.25')]


def test_reader_cannot_list_tenants(keystone_app):
    keystone_app.get('/v1/report/tenants', headers=conftest.reader('p1'),
                     status=403)


def test_admin_all_tenants(keystone_app):
    assert keystone_app.get('/v1/report/total',
                            params={'all_tenants': 'true'},
                            headers=conftest.ADMIN).json == '4.5'


def test_reader_without_project_sees_nothing(keystone_app):
    headers = {'X-Roles': 'reader'}
    assert keystone_app.get('/v1/report/total', params={'all_tenants': True},
                            headers=headers).json == '0'
    assert keystone_app.get('/v1/report/summary', params={
        'all_tenants': True}, headers=headers).json == {'summary': []}


def test_reports_ask_the_storage_for_prices_only(app, backends, monkeypatch):
    # Quantities are not reported by v1: not summing them halves the
    # aggregates over every point.
    asked = []
    total = backends.storage.total

    def recording_total(**kwargs):
        asked.append(kwargs.get('custom_fields'))
        return total(**kwargs)
    monkeypatch.setattr(backends.storage, 'total', recording_total)
    assert app.get('/v1/report/total').json == '4.5'
    app.get('/v1/report/summary', params={'groupby': 'res_type'})
    app.get('/v1/report/tenants')
    assert asked == ['SUM(price) AS rate'] * 3
