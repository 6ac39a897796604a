"""The v2 route table: the routes of the API contract, and how a request's
method and path find their endpoint."""

import pytest
import webob.exc

from cloudkitty.api import v2

#: The v2 routes of spec/api.md (HEAD is served wherever GET is).
CONTRACT = {
    ('GET', 'summary'),
    ('GET', 'dataframes'), ('POST', 'dataframes'),
    ('GET', 'scope'), ('PUT', 'scope'), ('PATCH', 'scope'), ('POST', 'scope'),
    ('POST', 'task/reprocesses'), ('GET', 'task/reprocesses'),
    ('GET', 'task/reprocesses/{scope_id}'),
    ('GET', 'rating/modules'), ('GET', 'rating/modules/{module_id}'),
    ('PUT', 'rating/modules/{module_id}'),
}


def test_the_table_holds_the_routes_of_the_contract():
    assert set(v2.ROUTES) == CONTRACT
    for endpoint in v2.ROUTES.values():
        assert callable(endpoint.respond)


TABLE = v2.RouteTable({
    ('GET', 'things'): 'list things',
    ('POST', 'things'): 'add a thing',
    ('GET', 'things/{thing_id}'): 'one thing',
    ('PUT', 'things/{thing_id}'): 'change a thing',
    ('GET', 'things/{thing_id}/parts/{part_id}'): 'one part',
    ('GET', 'things/special'): 'the special thing',
})


@pytest.mark.parametrize('method, path, expected', [
    ('GET', 'things', ('list things', ())),
    ('POST', 'things/', ('add a thing', ())),
    ('GET', 'things/t1', ('one thing', ('t1',))),
    ('PUT', 'things/t1/', ('change a thing', ('t1',))),
    ('GET', 'things/t1/parts/p2', ('one part', ('t1', 'p2'))),
    ('GET', 'things/special', ('the special thing', ())),
])
def test_a_route_is_found_with_its_path_arguments(method, path, expected):
    assert TABLE.find(method, path.split('/')) == expected


@pytest.mark.parametrize('path', [
    'nothing', 'things/t1/x', 'things/t1/parts', 'things//t1', 'things/t1//',
    '', 'things/t1/parts/p2/p3'])
def test_a_path_no_route_has_is_404(path):
    with pytest.raises(webob.exc.HTTPNotFound):
        TABLE.find('GET', path.split('/'))


@pytest.mark.parametrize('method, path, allow', [
    ('DELETE', 'things', ['GET', 'POST']),
    ('POST', 'things/t1', ['GET', 'PUT']),
    ('PUT', 'things/special', ['GET']),
])
def test_a_method_the_path_does_not_serve_is_405_with_its_methods(
        method, path, allow):
    with pytest.raises(webob.exc.HTTPMethodNotAllowed) as raised:
        TABLE.find(method, path.split('/'))
    assert list(raised.value.allow) == allow
