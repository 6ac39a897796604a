"""The API steering a running ``cloudkitty-processor``: reprocessing after a
price correction, scope creation, activation and reset.

The processor is the real command on SQLite with the file collector and
hashmap (:class:`harness.Scenario`); the API is the application
through WebTest on the same database; resets travel over the RabbitMQ of
the machine, in a virtual host of the test's own (:mod:`shared_servers`).
Prices are checked to the last digit against the scenario's usage.
"""

import datetime
import decimal
import json


from cloudkitty.tests.functional import harness
from cloudkitty.tests.functional import shared_servers

D = decimal.Decimal
HOUR = harness.HOUR
HASHMAP = '/v1/rating/module_config/hashmap'
#: The price of an instance hour, and the corrected one of the window.
PRICE, CORRECTED = D('0.5'), D('0.75')

#: A virtual host of the test's own on the machine's RabbitMQ (a fixture).
rabbitmq_vhost = shared_servers.rabbitmq_vhost


def enable_hashmap(app, start):
    """Price instance hours at :data:`PRICE` from ``start`` on."""
    service = app.post_json(f'{HASHMAP}/services', {'name': 'cpu'}).json
    app.post_json(f'{HASHMAP}/mappings?force=true', {
        'service_id': service['service_id'], 'type': 'flat',
        'cost': str(PRICE), 'start': start.isoformat()})
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)
    return service['service_id']


def cpu_prices(app, scope, begin, end):
    """``{period start: price}`` of the scope's instance hours, read from
    ``/v2/summary`` grouped by period."""
    response = app.get('/v2/summary', params={
        'begin': begin.isoformat(), 'end': end.isoformat(),
        'groupby': 'time', 'filters': ['type:cpu', f'project_id:{scope}'],
        'response_format': 'object', 'limit': 1000})
    rows = json.loads(response.text, parse_float=D)['results']
    return {datetime.datetime.fromisoformat(row['begin']): D(str(row['rate']))
            for row in rows}


def task_done(app, scope, end):
    tasks = app.get(f'/v2/task/reprocesses/{scope}').json['results']
    return bool(tasks) and all(
        t['current_reprocess_time'] is not None and
        datetime.datetime.fromisoformat(t['current_reprocess_time']) >= end
        for t in tasks)


def test_reprocessing_applies_a_price_correction(tmp_path, rabbitmq_vhost):
    scenario = harness.Steered(tmp_path, rabbitmq_vhost.url, scopes=2,
                               hours=8, seed=21)
    app, backends = scenario.api()
    service = enable_hashmap(app, scenario.base - 24 * HOUR)
    process = scenario.start()
    try:
        assert scenario.wait_until(scenario.caught_up, 60, process)
        scope, other = scenario.scopes
        hours = scenario.cpu_hours(scope)
        window = (scenario.base + 2 * HOUR, scenario.base + 5 * HOUR)
        span = (scenario.base, scenario.last_data_period + HOUR)
        assert cpu_prices(app, scope, *span) == {
            period: qty * PRICE for period, qty in hours.items()}
        before_other = cpu_prices(app, other, *span)

        # The price of those three hours was wrong for this customer: a
        # rule of the scope's own, valid over them only, corrects it.
        app.post_json(f'{HASHMAP}/mappings?force=true', {
            'service_id': service, 'type': 'flat', 'cost': str(CORRECTED),
            'tenant_id': scope, 'start': window[0].isoformat(),
            'end': (window[1] + HOUR).isoformat()})
        app.post_json('/v2/task/reprocesses', {
            'scope_ids': [scope], 'reason': 'price correction',
            'start_reprocess_time': window[0].isoformat(),
            'end_reprocess_time': window[1].isoformat()}, status=202)
        assert scenario.wait_until(
            lambda: task_done(app, scope, window[1]), 60, process)
    finally:
        code, err = harness.stop(process)
        backends.processor_rpc.close()
        backends.engine.dispose()
    assert code == 0, err
    assert cpu_prices(app, scope, *span) == {
        period: qty * (CORRECTED if window[0] <= period <= window[1]
                       else PRICE)
        for period, qty in hours.items()}
    assert cpu_prices(app, other, *span) == before_other
    scenario.assert_stored_exactly_once(priced=True)


def reset_and_wait(scenario, app, process, scope, timestamp):
    """Reset ``scope`` to ``timestamp`` through the API; return once the
    processor logged that it did."""
    app.put_json('/v2/scope', {
        'scope_id': [scope],
        'last_processed_timestamp': timestamp.isoformat()}, status=202)
    assert scenario.wait_until(
        lambda: f'Scope {scope} (project_id={scope}' in
        (scenario.tmp / 'ck.log').read_text(), 30, process)


def test_scope_creation_activation_and_reset_reach_the_processor(
        tmp_path, rabbitmq_vhost):
    scenario = harness.Steered(tmp_path, rabbitmq_vhost.url, scopes=3,
                               hours=8, seed=22, unstarted=1)
    app, backends = scenario.api()
    enable_hashmap(app, scenario.base - 24 * HOUR)
    created, reset, plain = scenario.scopes
    # Created through the API, inactive, to be rated from base + 4h.
    app.post_json('/v2/scope', {
        'scope_id': created, 'active': False,
        'last_processed_timestamp': (scenario.base + 3 * HOUR).isoformat()})
    process = scenario.start()
    try:
        assert scenario.wait_until(lambda: 'Serving scope resets' in (
            tmp_path / 'ck.log').read_text(), 60, process)
        assert scenario.wait_until(lambda: all(
            scenario.states()[s] >= scenario.last_data_period
            for s in (reset, plain)), 60, process)
        # Inactive: not rated, however long the others run.
        assert scenario.states()[created] == scenario.base + 3 * HOUR
        app.patch_json('/v2/scope', {'scope_id': created, 'active': True})
        # Rated again from base + 4h, its data from then on deleted first.
        reset_and_wait(scenario, app, process, reset,
                       scenario.base + 4 * HOUR)
        assert scenario.wait_until(scenario.caught_up, 60, process)
        # A reset deletes the data from its timestamp on: seen on a scope
        # made inactive first, which nothing rates again.
        app.patch_json('/v2/scope', {'scope_id': plain, 'active': False})
        reset_and_wait(scenario, app, process, plain,
                       scenario.base + 6 * HOUR)
    finally:
        code, err = harness.stop(process)
        backends.processor_rpc.close()
        backends.engine.dispose()
    assert code == 0, err
    assert scenario.states()[plain] == scenario.base + 5 * HOUR
    # The periods of the usage (the later ones, due too, are empty).
    hours = [(scenario.base + h * HOUR).isoformat()
             for h in range(1, scenario.hours + 1)]
    rated = [(scope, period) for scope, period in harness.RATED.findall(
        (tmp_path / 'ck.log').read_text()) if period in hours]
    assert [p for s, p in rated if s == created] == hours[3:]
    assert [p for s, p in rated if s == reset] == hours + hours[3:]
    assert [p for s, p in rated if s == plain] == hours
    # Each period stored once, priced: the created scope from base + 4h,
    # the one reset last up to base + 5h.
    span = (scenario.base, scenario.last_data_period + HOUR)
    kept = {created: (scenario.base + 4 * HOUR, scenario.last_data_period),
            reset: (scenario.base, scenario.last_data_period),
            plain: (scenario.base, scenario.base + 5 * HOUR)}
    for scope in scenario.scopes:
        first, last = kept[scope]
        assert cpu_prices(app, scope, *span) == {
            period: qty * PRICE
            for period, qty in scenario.cpu_hours(scope).items()
            if first <= period <= last}
    scenario.assert_stored_exactly_once(
        since={created: kept[created][0]},
        upto={scope: last for scope, (_, last) in kept.items()},
        priced=True)
