"""cloudkitty-writer on stored rated data: exact totals in both formats,
resumed runs, and files rebuilt from the storage when invalidated."""

import csv
import decimal
import io
import json

import pytest

from cloudkitty.tests.functional.writer.conftest import D
from cloudkitty.tests.functional.writer.conftest import EXACT
from cloudkitty.tests.functional.writer.conftest import FEBRUARY
from cloudkitty.tests.functional.writer.conftest import HOUR
from cloudkitty.tests.functional.writer.conftest import JANUARY
from cloudkitty.tests.functional.writer.conftest import make_frame
from cloudkitty.tests.functional.writer.conftest import PRICES
from cloudkitty.tests.functional.writer.conftest import T0
from cloudkitty.tests.functional.writer.conftest import VOLUME_QTY
from cloudkitty import writer
from cloudkitty.writer import orchestrator

PERIOD_PRICE = EXACT.add(EXACT.multiply(2, PRICES['instance']),
                         PRICES['volume'])


def exact_sum(values):
    with decimal.localcontext(EXACT):
        return sum(values, D(0))


def periods(count):
    """The exact price of ``count`` periods of a scope."""
    return EXACT.multiply(count, PERIOD_PRICE)


FILES = ['p1-2026-01.csv', 'p1-2026-02.csv', 'p1-osrf-2026-01.json',
         'p1-osrf-2026-02.json', 'p2-2026-01.csv', 'p2-2026-02.csv',
         'p2-osrf-2026-01.json', 'p2-osrf-2026-02.json']


def osrf(data):
    return json.loads(data, parse_float=D, parse_int=D)


def csv_rows(data):
    return list(csv.DictReader(io.StringIO(data.decode(), newline='')))


def test_totals_are_exact_in_both_formats(env):
    results = env.generate()
    assert [(r.scope_id, r.month, r.periods, r.total) for r in results] == [
        ('p1', JANUARY, 3, periods(3)),
        ('p1', FEBRUARY, 3, periods(3)),
        ('p2', JANUARY, 3, periods(3)),
        ('p2', FEBRUARY, 1, PERIOD_PRICE)]
    files = env.files()
    assert sorted(files) == FILES
    assert periods(3) == D('3.0740740734074074073407407405')

    report = osrf(files['p1-osrf-2026-01.json'])
    assert [f['period']['begin'] for f in report[:-1]] == [
        (T0 + h * HOUR).isoformat() for h in range(3)]
    assert report[-1] == {'total': D('3.0740740734074074073407407405')}
    assert files['p1-osrf-2026-01.json'].endswith(
        b'{"total": 3.0740740734074074073407407405}\n]\n')
    assert exact_sum(p['rating']['price'] for f in report[:-1]
                     for points in f['usage'].values()
                     for p in points) == report[-1]['total']
    volume = report[0]['usage']['volume'][0]
    assert volume['vol']['qty'] == VOLUME_QTY
    assert osrf(files['p2-osrf-2026-02.json'])[-1] == {
        'total': PERIOD_PRICE}

    rows = csv_rows(files['p1-2026-01.csv'])
    points, footer = rows[:-3], rows[-3:]
    assert len(points) == 9
    assert exact_sum(D(r['Cost']) for r in points) == periods(3)
    assert [(r['Operation'], r['Cost']) for r in footer] == [
        ('InvoiceTotal', '3.0740740734074074073407407405'),
        ('AccountTotal', '3.0740740734074074073407407405'),
        ('StatementTotal', '3.0740740734074074073407407405')]
    assert footer[2]['ItemName'] == (
        'Total statement amount for period 2026/01/01 00:00:00 - '
        '2026/02/01 00:00:00')
    assert points[0] == {
        'UsageStart': '2026/01/31 21:00:00', 'UsageEnd': '2026/01/31 22:00:00',
        'ResourceId': 'p1-vm0', 'Operation': 'RunInstances', 'UserId': 'u1',
        'ProjectId': 'p1', 'ItemName': '', 'ItemFlavor': 'm1.small',
        'ItemFlavorId': '42', 'AvailabilityZone': '', 'Service': 'instance',
        'UsageQuantity': '1', 'RateValue': '0.0123456789012345678901234567',
        'Cost': '0.0123456789012345678901234567', 'user:flavor_id': '42',
        'user:flavor_name': 'm1.small', 'user:tier': ''}
    volume = points[2]
    assert (volume['Service'], volume['UsageQuantity'], volume['Cost'],
            volume['RateValue']) == (
        'volume', '12345678.123456789', '1.0000000000000000000000000001',
        '0.00000008100000583200042727503129452')
    # The tier key appears at the third period: the earlier rows were
    # rewritten with an empty cell.
    assert [r['user:tier'] for r in points] == ['', '', ''] * 2 + [
        '', 'gold', '']


def test_a_second_run_leaves_up_to_date_files_alone(env):
    env.generate()
    before = {p.name: p.stat().st_mtime_ns for p in env.basepath.iterdir()}
    results = env.generate()
    assert [(r.periods, r.rebuilt) for r in results] == [(0, [])] * 4
    assert {p.name: p.stat().st_mtime_ns
            for p in env.basepath.iterdir()} == before


def test_runs_resume_and_end_as_a_rebuild_would(env):
    env.processed('p1', 2)
    env.generate(scope_ids=['p1'])
    assert sorted(env.files()) == ['p1-2026-01.csv', 'p1-osrf-2026-01.json']
    first = osrf(env.files()['p1-osrf-2026-01.json'])
    assert first[-1] == {'total': periods(2)}
    env.processed('p1', 6)
    results = env.generate(scope_ids=['p1'], end=T0 + 4 * HOUR)
    assert [(r.month, r.periods, r.until) for r in results] == [
        (JANUARY, 1, FEBRUARY), (FEBRUARY, 1, T0 + 4 * HOUR)]
    results = env.generate(scope_ids=['p1'])
    assert [(r.month, r.periods, r.rebuilt) for r in results] == [
        (JANUARY, 0, []), (FEBRUARY, 2, [])]
    resumed = env.files()
    assert osrf(resumed['p1-osrf-2026-02.json'])[-1] == {
        'total': periods(3)}

    for path in env.basepath.glob('p1*'):
        path.unlink()
    results = env.generate(scope_ids=['p1'])
    assert [r.rebuilt for r in results] == [['osrf', 'csv']] * 2
    assert env.files() == resumed


@pytest.mark.parametrize('damage', ['delete', 'truncate', 'edit', 'append'])
def test_an_invalidated_file_is_rebuilt_identically(env, damage):
    env.generate()
    written = env.files()
    path = env.basepath / 'p1-osrf-2026-01.json'
    other = env.basepath / 'p1-2026-01.csv'
    other_mtime = other.stat().st_mtime_ns
    data = path.read_bytes()
    if damage == 'delete':
        path.unlink()
    elif damage == 'truncate':
        path.write_bytes(data[:len(data) // 2])
    elif damage == 'edit':
        path.write_bytes(data.replace(b'"price": 1.0000', b'"price": 9.0000',
                                      1))
    else:
        path.write_bytes(data + b' ')
    results = env.generate()
    # Bytes after an intact body are a footer to rewrite, not a rebuild.
    rebuilt = [] if damage == 'append' else ['osrf']
    assert [(r.scope_id, r.month, r.rebuilt) for r in results] == [
        ('p1', JANUARY, rebuilt), ('p1', FEBRUARY, []),
        ('p2', JANUARY, []), ('p2', FEBRUARY, [])]
    assert env.files() == written
    assert other.stat().st_mtime_ns == other_mtime


def test_a_damaged_footer_is_rewritten_without_a_rebuild(env):
    env.generate()
    written = env.files()
    path = env.basepath / 'p1-2026-02.csv'
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b',,,InvoiceTotal')])
    results = env.generate()
    assert [(r.periods, r.rebuilt) for r in results] == [(0, [])] * 4
    assert env.files() == written


def test_reprocessed_data_rebuilds_the_month(env):
    env.generate()
    env.storage.replace(make_frame(4, 'p1', price_factor=2), 'p1')
    results = env.generate()
    assert [(r.scope_id, r.month, r.rebuilt, r.total) for r in results] == [
        ('p1', JANUARY, [], periods(3)),
        ('p1', FEBRUARY, ['osrf', 'csv'], periods(4)),
        ('p2', JANUARY, [], periods(3)),
        ('p2', FEBRUARY, [], PERIOD_PRICE)]
    files = env.files()
    assert osrf(files['p1-osrf-2026-02.json'])[-1] == {
        'total': D('4.0987654312098765431209876540')}
    assert csv_rows(files['p1-2026-02.csv'])[-1]['Cost'] == \
        '4.0987654312098765431209876540'


def test_lost_states_rebuild_the_files_identically(env):
    env.generate()
    written = env.files()
    with env.engine.begin() as conn:
        conn.exec_driver_sql('DELETE FROM writer_file_states')
    results = env.generate(begin=FEBRUARY)
    assert [(r.month, r.rebuilt) for r in results] == [(FEBRUARY, [])] * 2
    assert env.files() == written


def test_errors_name_the_problem(env):
    with pytest.raises(writer.WriterError, match=r"no processed period for "
                       r"scope\(s\) p9 \(known scopes: p1, p2\)"):
        env.generate(scope_ids=['p9'])
    env.conf.set_override('pipeline', ['osrf', 'pdf'], 'output')
    with pytest.raises(writer.WriterError, match=r"unknown writer 'pdf' "
                       r"\(installed in cloudkitty.output.writers: csv, "
                       r"osrf\)"):
        writer.get_writers(env.conf)


def test_one_run_at_a_time(env):
    import fcntl
    env.basepath.mkdir()
    with open(env.basepath / orchestrator.LOCK_FILE, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(writer.WriterError, match='another '
                           'cloudkitty-writer is writing to'):
            env.generate()
