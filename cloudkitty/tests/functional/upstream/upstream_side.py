"""Run by upstream CloudKitty's python, in its virtualenv (never imported
by the test suite): upstream's own code serves its API (through which
the tests create the rules, see :mod:`upstream_api`), creates the states,
rates and stores the points, and sums them.

``python upstream_side.py CONFIG COMMAND`` reads a JSON argument on stdin
and writes a JSON answer on stdout:

- ``setup``: scope states, reprocessing tasks (one pending, one
  finished) and a collector mapping;
- ``serve``: ``{"port"}``: upstream's API on 127.0.0.1, until killed;
- ``rate``: ``{"begin", "periods", "period", "scopes", "resources"}``:
  for each period, scope and resource an instance, a volume and an ip
  point,
  priced by upstream's hashmap processor for the scope, pushed through
  upstream's storage (InfluxDB); answers the number of points;
- ``totals``: ``{"windows": [[begin, end]]}``: upstream's storage
  ``total`` grouped by type and project_id per window;
- ``retrieve``: ``{"begin", "end"}``: every point upstream's storage
  ``retrieve`` gives for the window, as ``[type, unit, qty, price,
  groupby, metadata]`` (quantities and prices as text);
- ``quote``: ``{"resources": [{"service", "volume", "desc"}]}``: for each
  resource, upstream's quote of it alone (its hashmap processor's
  ``quote``, as upstream's RPC quote endpoint runs it: no tenant).
"""

import datetime
import decimal
import importlib
import json
import sys
from wsgiref import simple_server

from cloudkitty.api import app as api_app
from cloudkitty import dataframe
from cloudkitty.db import api as ck_db_api
from cloudkitty.rating.hash import HashMap
from cloudkitty import service
from cloudkitty import storage
from cloudkitty import storage_state
from cloudkitty.storage_state import models as state_models

UTC = datetime.timezone.utc
FLAVORS = ('m1.small', 'm1.large', 'm1.xlarge')


def setup(_arg):
    ck_db_api.get_instance().get_service_to_collector_mapping(
    ).set_mapping('instance', 'gnocchi')
    states = storage_state.StateManager()
    for number in range(3):
        states.set_last_processed_timestamp(
            f'scope-{number}', datetime.datetime(2026, 3, 31, 23, tzinfo=UTC),
            fetcher='keystone', collector='gnocchi', scope_key='project_id')
    tasks = storage_state.ReprocessingSchedulerDb()
    for current in (None, datetime.datetime(2026, 2, 1)):
        tasks.persist(state_models.ReprocessingScheduler(
            identifier='scope-1', reason='price fix',
            start_reprocess_time=datetime.datetime(2026, 1, 1),
            end_reprocess_time=datetime.datetime(2026, 2, 1),
            current_reprocess_time=current))
    return {}


def serve(arg):
    """Serve upstream's API (its WSGI application, as its
    ``cloudkitty-api`` builds it without the paste pipeline) on
    127.0.0.1, port ``arg['port']``, until killed.

    Upstream's rule controllers read ``[keystone_authtoken]`` for the
    request's user even under noauth (answering ``unknown`` without a
    token), options that only its keystone pipeline registers: importing
    that pipeline's middleware registers them."""
    importlib.import_module('keystonemiddleware.auth_token')
    server = simple_server.make_server('127.0.0.1', arg['port'],
                                       api_app.setup_app())
    server.serve_forever()


def _points(scope, resource, index):
    flavor = FLAVORS[(resource + index // 200) % len(FLAVORS)]
    instance = dataframe.DataPoint(
        'instance', 1, 0,
        {'project_id': scope, 'id': f'{scope}-vm-{resource}'},
        {'flavor_name': flavor, 'vcpus': 2 ** (resource % 3)})
    size = decimal.Decimal(10 + (index * 7 + resource * 13) % 90) / 4
    volume = dataframe.DataPoint(
        'GiB', size, 0,
        {'project_id': scope, 'id': f'{scope}-vol-{resource}'},
        {'volume_type': 'ssd' if resource % 2 else 'hdd'})
    address = dataframe.DataPoint(
        'ip', 1, 0, {'project_id': scope, 'id': f'{scope}-ip-{resource}'},
        {'pool': 'public'})
    return (('instance', instance), ('volume', volume), ('ip', address))


def rate(arg):
    begin = datetime.datetime.fromisoformat(arg['begin'])
    period = datetime.timedelta(seconds=arg['period'])
    backend = storage.get_storage()
    processors = {scope: HashMap(tenant_id=scope) for scope in arg['scopes']}
    count = 0
    frames = []
    for index in range(arg['periods']):
        start = begin + index * period
        for scope in arg['scopes']:
            frame = dataframe.DataFrame(start=start, end=start + period)
            for resource in range(arg['resources']):
                for type_, point in _points(scope, resource, index):
                    frame.add_point(point, type_)
            frames.append(processors[scope].process(frame))
            count += sum(1 for _ in frames[-1].iterpoints())
        if len(frames) >= 100:
            backend.push(frames)
            frames = []
    backend.push(frames)
    return {'points': count}


def totals(arg):
    backend = storage.get_storage()
    answer = []
    for begin, end in arg['windows']:
        rows = backend.total(
            groupby=['type', 'project_id'],
            begin=datetime.datetime.fromisoformat(begin),
            end=datetime.datetime.fromisoformat(end), paginate=False)
        answer.append([{'scope': r['project_id'], 'type': r['type'],
                        'qty': repr(r['qty']), 'rate': repr(r['rate'])}
                       for r in rows['results']])
    return answer


def retrieve(arg):
    frames = storage.get_storage().retrieve(
        begin=datetime.datetime.fromisoformat(arg['begin']),
        end=datetime.datetime.fromisoformat(arg['end']),
        paginate=False)['dataframes']
    return [[type_, point.unit, str(point.qty), str(point.price),
             dict(point.groupby), dict(point.metadata)]
            for frame in frames for type_, point in frame.iterpoints()]


def quote(arg):
    processor = HashMap()
    prices = []
    for resource in arg['resources']:
        frame = dataframe.DataFrame(
            start=datetime.datetime.now(UTC),
            end=datetime.datetime.now(UTC) + datetime.timedelta(hours=1))
        desc = resource['desc']
        frame.add_point(dataframe.DataPoint(
            'unit', decimal.Decimal(resource['volume']), 0,
            desc.get('groupby', {}), desc.get('metadata', {})),
            resource['service'])
        prices.append(str(sum(point.price for _, point in
                              processor.quote(frame).iterpoints())))
    return prices


if __name__ == '__main__':
    service.prepare_service(['upstream_side', '--config-file', sys.argv[1]])
    command = {'setup': setup, 'serve': serve, 'rate': rate,
               'totals': totals, 'retrieve': retrieve, 'quote': quote}[sys.argv[2]]
    json.dump(command(json.load(sys.stdin)), sys.stdout)
