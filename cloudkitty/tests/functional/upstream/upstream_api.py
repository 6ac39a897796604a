"""Upstream CloudKitty's own API server, and the rules the tests create
through it.

:class:`UpstreamAPI` runs ``upstream_side.py serve`` (upstream's WSGI
application, ``auth_strategy = noauth``, its database the test's MariaDB
one) on a free loopback port. :func:`create_rules` creates, through
upstream's REST API only (``/v1/rating/module_config/hashmap/...``,
``/v1/rating/module_config/pyscripts/...``, ``/v1/rating/modules/...``),
the rules the import tests carry over: service mappings, field mappings
in a group, a service threshold, a tenant's threshold, a deleted mapping,
a pyscript, and the modules' states and priorities. Upstream's quote goes
through RPC to a processor, so quotes are asked of upstream's hashmap code
directly (``upstream_side.py quote``).
"""

import json
import subprocess
import urllib.error
import urllib.request

from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional.upstream import server

FLAVORS = (('m1.small', '0.0123'), ('m1.large', '0.0471'),
           ('m1.xlarge', '0.1337'))
SCRIPT = '# priced by hashmap\nfor period in data:\n    pass\n'
START = '2020-01-01T00:00:00'


class UpstreamAPI:
    """Upstream's API server of ``upstream`` (a set-up
    :class:`server.Upstream`) on a free port of 127.0.0.1."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.process = None
        self.url = None
        self.log = upstream.state / 'api.log'

    def start(self):
        """Start the server; return once it answers ``GET /``, or raise
        :class:`server.UpstreamUnavailable` after
        :data:`server.START_TIMEOUT` seconds."""
        port = live_server.free_port()
        self.url = f'http://127.0.0.1:{port}'
        with open(self.log, 'w') as log:
            self.process = subprocess.Popen(
                self.upstream.side_argv('serve'), stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, text=True,
                cwd=self.upstream.state, env=self.upstream.env(),
                start_new_session=True)
        self.process.stdin.write(json.dumps({'port': port}))
        self.process.stdin.close()
        if not server.answers(self.url + '/', self.process):
            self.stop()
            raise server.UpstreamUnavailable(
                'upstream API did not start: ' +
                live_server.log_tail(self.log))

    def call(self, method, path, body=None, status=201):
        """``method`` ``path`` with the JSON ``body``; assert the answer's
        ``status``; return its JSON (None when empty)."""
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                code, text = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read()
        assert code == status, (method, path, code, text[-2000:])
        return json.loads(text) if text else None

    def stop(self):
        if self.process is not None:
            live_server.stop_process(self.process)
            self.process = None


def create_rules(api):
    """Create the rules through ``api`` (a started :class:`UpstreamAPI`);
    return the ids upstream gave, ``{'services', 'fields', 'groups',
    'mappings', 'thresholds', 'scripts'}`` (the deleted mapping last)."""
    hashmap = '/v1/rating/module_config/hashmap'

    def post(kind, body):
        # force: mappings start in the past (upstream refuses it without).
        query = '?force=true' if kind == 'mappings' else ''
        return api.call('POST', f'{hashmap}/{kind}{query}', body)

    instance = post('services', {'name': 'instance'})['service_id']
    volume = post('services', {'name': 'volume'})['service_id']
    address = post('services', {'name': 'ip'})['service_id']
    flavor = post('fields', {'service_id': instance,
                             'name': 'flavor_name'})['field_id']
    group = post('groups', {'name': 'instance_uptime_flavor'})['group_id']
    ids = {'services': [instance, volume, address], 'fields': [flavor],
           'groups': [group], 'mappings': [], 'thresholds': []}
    for value, cost in FLAVORS:
        ids['mappings'].append(post('mappings', {
            'type': 'flat', 'value': value, 'cost': cost,
            'field_id': flavor, 'group_id': group, 'start': START,
            'name': f'flavor {value}',
            'description': f'{value} per hour'})['mapping_id'])
    ids['mappings'].append(post('mappings', {
        'type': 'flat', 'cost': '0.0009', 'service_id': volume,
        'start': START, 'name': 'volume GiB'})['mapping_id'])
    ids['mappings'].append(post('mappings', {
        'type': 'flat', 'cost': '0.005', 'service_id': address,
        'start': START, 'name': 'floating ip'})['mapping_id'])
    gone = post('mappings', {'type': 'flat', 'cost': '5',
                             'service_id': instance, 'start': START,
                             'name': 'old'})['mapping_id']
    api.call('DELETE', f'{hashmap}/mappings/{gone}', status=204)
    ids['mappings'].append(gone)
    for tenant, cost in ((None, '0.98'), ('scope-1', '0.95')):
        ids['thresholds'].append(post('thresholds', {
            'level': '50', 'cost': cost, 'type': 'rate',
            'service_id': volume, 'tenant_id': tenant})['threshold_id'])
    ids['scripts'] = [api.call(
        'POST', '/v1/rating/module_config/pyscripts/scripts?force=true',
        {'name': 'noop', 'data': SCRIPT, 'start': START})['script_id']]
    # pyscripts enabled then disabled: upstream stores no state for a
    # module never changed.
    for module, state in (('hashmap', {'enabled': True, 'priority': 100}),
                          ('pyscripts', {'enabled': True, 'priority': 2}),
                          ('pyscripts', {'enabled': False})):
        # 302: urllib follows no redirect of a PUT, it answers it.
        api.call('PUT', f'/v1/rating/modules/{module}',
                 {'module_id': module, **state}, status=302)
    return ids
