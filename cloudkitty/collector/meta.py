"""The ``meta`` collector: each metric from the collector it is mapped to.

With ``[collect] collector = meta``, every metric of metrics.yml is
collected by another collector, its *sub-collector*:

- the collector its service is mapped to through ``/v1/collector/mappings``
  (:class:`~cloudkitty.storage_state.collector.CollectorMappingManager`);
  the service is the metric's name in metrics.yml (its key under
  ``metrics``, so all the definitions of one source metric come from one
  source);
- else ``[collector_meta] default_collector``;
- else none: a configuration error naming the metric.

A collector disabled through ``/v1/collector/states`` (a collector is
enabled until disabled there) collects nothing: its metrics yield no data,
so the periods rated while it is disabled are stored without them. A line
says which metrics are left out, at INFO when that changes, at DEBUG for
the other periods: an operator chose it, it is not an error.

**When the mappings and states are read.** Once per period: the first
collection of a period (a period start other than the last one read for)
reads both tables, and the other collections of that period use what it
read. A change made through the API therefore applies from the next period
rated, without a restart, as a rating module's state does. A sub-collector
that fails (:class:`~cloudkitty.collector.CollectError`) makes the next
collection read them again, so that a period being retried sees what the
operator changed meanwhile (a source that is down, disabled or remapped).

**When metrics are validated.** Each metric is validated by the collector
it is mapped to (that collector's ``check_configuration``, so its
``extra_args`` schema):

- at start-up, with the mappings of that moment: ``cloudkitty-processor``
  refuses to start (its validation hands its ``ConfigOpts``, and its
  engine when it has one, to
  :func:`~cloudkitty.collector.validate_metrics_conf`, and
  :meth:`MetaCollector.check_configuration` reads the mappings), and so
  does building the collector. An unmapped metric without a default
  collector, a collector that cannot be loaded, or a metric its collector
  refuses, is an :class:`~cloudkitty.collector.InvalidConfiguration` naming
  the metric and the collector;
- again when a period's read finds a metric mapped to another collector:
  the metrics of each collector whose set of metrics changed are validated
  and that collector built anew. A running processor cannot refuse to
  start: the error is logged (ERROR, naming the metric and the collector)
  and the metric's collections fail with a ``CollectError`` carrying it, so
  that its scopes are retried on later passes, nothing recorded, until the
  mapping is fixed. The other metrics are collected meanwhile.

Sub-collectors are built once per collector and set of metrics, and reused
from period to period. :meth:`MetaCollector.retrieve_many` is the
sub-collector's, so a collector with grouped collection still asks its
source once for all the scopes; :attr:`MetaCollector.grouped_collection`
is true when a sub-collector has it.
"""

import dataclasses
import logging
import threading

from cloudkitty import collector as ck_collector
from cloudkitty.collector import metrics_conf
from cloudkitty import db
from cloudkitty.storage_state import collector as collector_state

LOG = logging.getLogger(__name__)

NAME = 'meta'
_MAPPED = 'mapped through /v1/collector/mappings'
_DEFAULT = 'the default collector, [collector_meta] default_collector'


class DatabaseRouting:
    """The mappings and states of the database of ``engine``."""

    def __init__(self, engine):
        self._mappings = collector_state.CollectorMappingManager(engine)
        self._states = collector_state.CollectorStateManager(engine)

    def read(self):
        """``({service: collector}, {collector: enabled})``; the states are
        the ones set (a collector absent is enabled)."""
        mappings = {row['service']: row['collector']
                    for row in self._mappings.get_all()}
        return mappings, self._states.get_all()


def read_mappings(context):
    """``{service: collector}`` of the database of a
    :class:`~cloudkitty.collector.ValidationContext`: its ``engine``'s,
    else (no engine handed in) the engine the process shares for
    ``[database] connection`` of its ``conf``.

    :raises InvalidConfiguration: the database cannot be read
    """
    engine = context.engine or db.get_engine(context.conf)
    try:
        return DatabaseRouting(engine).read()[0]
    except Exception as exc:  # noqa: BLE001 - any failure of the database
        raise ck_collector.InvalidConfiguration(
            'meta collector: cannot read the collector mappings of '
            f'[database] connection: {type(exc).__name__}: {exc}') from None


def assign(metrics, mappings, default):
    """The collector of each metric.

    :param metrics: ``{key: definition}`` (only the keys are read)
    :param mappings: ``{service: collector}``
    :param default: ``[collector_meta] default_collector`` (or ``None``)
    :returns: ``(groups, errors)``: ``{collector: {key: origin}}`` where
        origin says why (mapped, or the default), and ``{key:
        InvalidConfiguration}`` for the metrics without a collector
    """
    groups, errors = {}, {}
    for key in metrics:
        service = metrics_conf.source_metric_name(key)
        name, origin = mappings.get(service), _MAPPED
        if name is None:
            name, origin = default, _DEFAULT
        if not name:
            errors[key] = ck_collector.InvalidConfiguration(
                f"metric '{key}': no collector: service '{service}' is not "
                f'{_MAPPED} and [collector_meta] default_collector is not '
                'set', metric=key)
        elif name == NAME:
            errors[key] = ck_collector.InvalidConfiguration(
                f"metric '{key}': collector '{NAME}' ({origin}) does not "
                'collect by itself; map the service to the collector of its '
                'data source', metric=key)
        else:
            groups.setdefault(name, {})[key] = origin
    return groups, errors


def check_group(name, definitions, origins, load, scope_key):
    """Validate metrics with the collector ``name``.

    :param definitions: ``{key: definition}`` (base-validated)
    :param origins: ``{key: origin}`` as :func:`assign` returns them
    :param load: ``f(name) -> collector class``
    :returns: ``(class or None, {key: validated definition}, {key:
        InvalidConfiguration})``; every error names the metric and the
        collector
    """
    try:
        collector_class = load(name)
    except Exception as exc:  # noqa: BLE001 - stevedore: missing or broken
        return None, {}, {key: ck_collector.InvalidConfiguration(
            f"metric '{key}': collector '{name}' ({origins[key]}) cannot be "
            f'loaded: {type(exc).__name__}: {exc}', metric=key)
            for key in definitions}
    valid, errors = {}, {}
    for key, definition in definitions.items():
        try:
            valid.update(ck_collector.validate_metrics_conf(
                {key: definition}, collector_class, scope_key))
        except ck_collector.InvalidConfiguration as exc:
            errors[key] = ck_collector.InvalidConfiguration(
                f"{exc} (collector '{name}', {origins[key]})", metric=key,
                key=exc.key)
    return collector_class, valid, errors


def _first(metrics, errors):
    """The error of the first metric (in metrics.yml's order) that has one."""
    return next(errors[key] for key in metrics if key in errors)


@dataclasses.dataclass(frozen=True)
class Route:
    """Where a metric is collected from during a period.

    ``instance`` is the sub-collector (``None`` when ``error`` says why the
    metric cannot be collected); ``collector`` may be ``None`` with an
    error (no collector at all).
    """

    collector: str
    enabled: bool = True
    instance: object = None
    error: str = None


class MetaCollector(ck_collector.BaseCollector):
    """Collect each metric with the collector it is mapped to.

    Keyword arguments, beyond :class:`~cloudkitty.collector.BaseCollector`'s:

    - ``routing``: has ``read() -> ({service: collector}, {collector:
      enabled})`` (default: :class:`DatabaseRouting` of ``engine``);
    - ``engine``: the process's database engine (default, for callers
      that hand none: an engine of ``[database] connection``);
    - ``loader``: ``f(name) -> collector class`` (default:
      :func:`~cloudkitty.collector.load_collector_class`).

    Building it reads the mappings and states, validates every metric with
    its collector and builds the sub-collectors.

    :raises InvalidConfiguration: a metric has no collector, its collector
        cannot be loaded or built, or refuses it
    """

    collector_name = NAME

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.default_collector = \
            self.oslo_conf.collector_meta.default_collector
        self._tables = kwargs.get('routing') or DatabaseRouting(
            kwargs.get('engine') or db.get_engine(self.oslo_conf))
        self._load = kwargs.get('loader') or ck_collector.load_collector_class
        self._lock = threading.Lock()
        # The period start the routes were read for; None: read again.
        self._read_for = None
        # (collector, frozenset of keys) -> (instance or None, {key: error})
        self._built = {}
        self._routes = {}
        self._left_out = self._failing = frozenset()
        self._read(strict=True)

    @staticmethod
    def check_configuration(conf, context=None):
        """The base validation; then, when ``context`` (a
        :class:`~cloudkitty.collector.ValidationContext`) holds the
        service's ``ConfigOpts``, each metric's by the collector the
        database maps it to (see the module's documentation), read through
        the context's engine (see :func:`read_mappings`).

        :raises InvalidConfiguration: naming the metric (and the
            collector)
        """
        conf = ck_collector.BaseCollector.check_configuration(conf, context)
        if context is None or context.conf is None:
            return conf
        groups, errors = assign(
            conf, read_mappings(context),
            context.conf.collector_meta.default_collector)
        valid = {}
        for name, origins in groups.items():
            _, checked, failed = check_group(
                name, {key: conf[key] for key in origins}, origins,
                ck_collector.load_collector_class, context.scope_key)
            valid.update(checked)
            errors.update(failed)
        if errors:
            raise _first(conf, errors)
        return {key: valid[key] for key in conf}

    # --- routing -----------------------------------------------------------------

    def _read(self, start=None, strict=False):
        """Read the mappings and states; build what changed.

        With ``strict``, any metric that cannot be collected raises its
        :class:`~cloudkitty.collector.InvalidConfiguration`.
        """
        mappings, states = self._tables.read()
        groups, errors = assign(self.conf, mappings, self.default_collector)
        built, routes = {}, {}
        for name, origins in groups.items():
            signature = (name, frozenset(origins))
            if signature not in self._built:
                self._built[signature] = self._build(name, origins, start)
            instance, failed = built[signature] = self._built[signature]
            errors.update(failed)
            enabled = states.get(name, True)
            for key in origins:
                routes[key] = Route(name, enabled, instance,
                                    str(failed[key]) if key in failed
                                    else None)
        if strict and errors:
            raise _first(self.conf, errors)
        for key, exc in errors.items():
            routes.setdefault(key, Route(None, error=str(exc)))
        self._built, self._routes, self._read_for = built, routes, start
        if start is not None:
            self._report(start, routes, errors)

    def _build(self, name, origins, start):
        """``(sub-collector or None, {key: error})`` of the metrics
        ``origins`` of collector ``name``, from the period ``start``."""
        keys = [key for key in self.conf if key in origins]
        definitions = {key: self.conf[key] for key in keys}
        collector_class, valid, errors = check_group(
            name, definitions, origins, self._load, self.scope_key)
        if not valid:
            return None, errors
        try:
            instance = collector_class(conf=valid, period=self.period,
                                       oslo_conf=self.oslo_conf)
        except Exception as exc:  # noqa: BLE001 - its client, its options...
            errors.update({key: ck_collector.InvalidConfiguration(
                f"metric '{key}': collector '{name}' ({origins[key]}) cannot "
                f'be built: {type(exc).__name__}: {exc}', metric=key)
                for key in valid})
            return None, errors
        LOG.info('Collector %s collects %s%s', name,
                 ', '.join(k for k in keys if k in valid),
                 '' if start is None else
                 f' from the period starting {start.isoformat()}')
        return instance, errors

    def _report(self, start, routes, errors):
        """Log the metrics left out (disabled) and the ones in error: at
        INFO and ERROR when that changed since the last read, else DEBUG."""
        left_out = frozenset(k for k, r in routes.items() if not r.enabled)
        when = f'for the period starting {start.isoformat()}'
        if left_out:
            log = LOG.info if left_out != self._left_out else LOG.debug
            by_collector = {}
            for key in self.conf:
                if key in left_out:
                    by_collector.setdefault(routes[key].collector,
                                            []).append(key)
            log('Not collected %s: %s', when, '; '.join(
                f'metrics {", ".join(keys)} of collector {name}, disabled '
                'through /v1/collector/states'
                for name, keys in by_collector.items()))
        elif self._left_out:
            LOG.info('Every collector is enabled %s', when)
        failing = frozenset(k for k in errors if routes[k].enabled)
        for key in self.conf:
            if key in failing:
                log = LOG.error if failing != self._failing else LOG.debug
                log('Metric %s cannot be collected %s, its scopes are '
                    'retried until the mapping is fixed: %s', key, when,
                    errors[key])
        self._left_out, self._failing = left_out, failing

    def _route(self, metric_name, start, scope_id):
        with self._lock:
            if self._read_for != start:
                try:
                    self._read(start)
                except Exception as exc:  # noqa: BLE001 - database down...
                    raise ck_collector.CollectError(
                        NAME, metric_name, scope_id,
                        'cannot read the collector mappings and states: '
                        f'{type(exc).__name__}: {exc}') from exc
            route = self._routes.get(metric_name)
        if route is None:
            raise ck_collector.CollectError(
                NAME, metric_name, scope_id,
                'metric not in the metrics configuration')
        return route

    def _delegate(self, metric_name, start, scope_id, call):
        """``call(sub-collector)`` for the metric's route of ``start``.

        :raises NoDataCollected: the metric's collector is disabled
        :raises CollectError: the metric cannot be collected (its error),
            or the sub-collector failed; the routes are then read again by
            the next collection
        """
        route = self._route(metric_name, start, scope_id)
        if not route.enabled:
            raise ck_collector.NoDataCollected(
                route.collector, self.conf[metric_name]['alt_name'],
                scope_id)
        if route.error is not None:
            with self._lock:
                self._read_for = None
            raise ck_collector.CollectError(NAME, metric_name, scope_id,
                                            route.error)
        try:
            return call(route.instance)
        except ck_collector.CollectError:
            with self._lock:
                self._read_for = None
            raise

    # --- the collector interface -----------------------------------------------------

    @property
    def grouped_collection(self):
        """Whether a sub-collector collects several scopes in one call."""
        return any(getattr(instance, 'grouped_collection', False)
                   for instance, _ in self._built.values())

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        """The sub-collector's ``fetch_all``; ``[]`` for a metric whose
        collector is disabled."""
        try:
            return self._delegate(
                metric_name, start, project_id,
                lambda sub: sub.fetch_all(metric_name, start, end,
                                          project_id, q_filter))
        except ck_collector.NoDataCollected:
            return []

    def retrieve(self, metric_name, start, end, project_id=None,
                 q_filter=None):
        """The sub-collector's ``retrieve``.

        :raises NoDataCollected: no data, or the metric's collector is
            disabled
        :raises CollectError: see :meth:`_delegate`
        """
        return self._delegate(
            metric_name, start, project_id,
            lambda sub: sub.retrieve(metric_name, start, end, project_id,
                                     q_filter))

    def retrieve_many(self, metric_name, start, end, scope_ids,
                      q_filter=None):
        """The sub-collector's ``retrieve_many`` (``{}`` for a metric whose
        collector is disabled)."""
        try:
            return self._delegate(
                metric_name, start, None,
                lambda sub: sub.retrieve_many(metric_name, start, end,
                                              scope_ids, q_filter))
        except ck_collector.NoDataCollected:
            return {}
