"""A SQLite database holding rated data of two scopes across a month end,
and the configuration of a report writer over it."""

import dataclasses
import datetime
import decimal

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty import storage
from cloudkitty import storage_state
from cloudkitty import writer
from cloudkitty.writer import orchestrator

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
# Six periods, three in January and three in February.
T0 = datetime.datetime(2026, 1, 31, 21, tzinfo=UTC)
JANUARY = datetime.datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime.datetime(2026, 2, 1, tzinfo=UTC)
# Prices with 28 decimals and a quantity with many digits: any float or
# rounding on the way shows in the totals.
PRICES = {'instance': D('0.0123456789012345678901234567'),
          'volume': D('1.0000000000000000000000000001')}
VOLUME_QTY = D('12345678.123456789')
# The arithmetic of the expectations: exact (the default context would
# round these 29-digit sums).
EXACT = decimal.Context(prec=100)


def make_frame(hour, scope_id, price_factor=1):
    """The period ``T0 + hour`` of ``scope_id``: two instances (the second
    gets a ``tier`` metadata key from hour 2 on) and one volume."""
    start = T0 + hour * HOUR
    frame = dataframe.DataFrame(start, start + HOUR)
    for i in range(2):
        metadata = {'flavor_name': 'm1.small', 'flavor_id': '42'}
        if i == 1 and hour >= 2:
            metadata['tier'] = 'gold'
        frame.add_point(dataframe.DataPoint(
            'instance', 1, EXACT.multiply(PRICES['instance'], price_factor),
            {'id': f'{scope_id}-vm{i}', 'project_id': scope_id,
             'user_id': 'u1'}, metadata), 'instance')
    frame.add_point(dataframe.DataPoint(
        'GiB', VOLUME_QTY, EXACT.multiply(PRICES['volume'], price_factor),
        {'id': f'{scope_id}-vol', 'project_id': scope_id}, {}), 'volume')
    return frame


@dataclasses.dataclass
class Env:
    conf: cfg.ConfigOpts
    storage: object
    engine: object
    basepath: object

    def orchestrator(self, **kwargs):
        return orchestrator.WriteOrchestrator(
            self.conf, self.storage, self.engine,
            writer.get_writers(self.conf), **kwargs)

    def generate(self, **kwargs):
        return self.orchestrator().generate(**kwargs)

    def processed(self, scope_id, hours):
        """Record ``hours`` periods of the scope as processed."""
        storage_state.ScopeStateManager(
            self.engine, 'project_id', 'source', 'file',
        ).set_last_processed_timestamp(scope_id, T0 + (hours - 1) * HOUR)

    def files(self):
        return {path.name: path.read_bytes()
                for path in sorted(self.basepath.iterdir())
                if not path.name.startswith('.')}


def make_conf(tmp_path):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty')
    conf.set_override('connection', f'sqlite:///{tmp_path}/ck.sqlite',
                      'database')
    conf.set_override('basepath', str(tmp_path / 'reports'), 'output')
    conf.set_override('pipeline', ['osrf', 'csv'], 'output')
    # Pages smaller than a period: a period is read in several pages.
    conf.set_override('page_size', 2, 'output')
    return conf


@pytest.fixture
def env(tmp_path):
    """p1 processed for all six periods, p2 for the first four."""
    conf = make_conf(tmp_path)
    store = storage.get_storage(conf)
    store.init()
    for scope_id in ('p1', 'p2'):
        store.push([make_frame(h, scope_id) for h in range(6)], scope_id)
    engine = db.create_engine(conf.database.connection)
    result = Env(conf, store, engine, tmp_path / 'reports')
    result.processed('p1', 6)
    result.processed('p2', 4)
    yield result
    engine.dispose()
    store.engine.dispose()
