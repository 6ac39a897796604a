"""Collectors: what gathers usage from a data source, per metric and scope.

This module holds the public surface third-party collectors import
(:class:`BaseCollector`, :data:`METRIC_BASE_SCHEMA`, the errors) and the
loaders of the configured collector. The package:

- ``__init__``: the errors, :class:`BaseCollector`, the loaders, and the
  names of the two modules below that third parties import (re-exported);
- :mod:`~cloudkitty.collector.metrics_conf`: the schema of a metric
  definition and the validation of ``metrics.yml``;
- :mod:`~cloudkitty.collector.quantity`: factor, offset and mutate, exact;
- one module per collector: ``file``, ``gnocchi``, ``prometheus``, ``meta``.
"""

import abc
import types

from oslo_config import cfg
from stevedore import driver

from cloudkitty.collector import metrics_conf
from cloudkitty.collector import quantity
from cloudkitty import dataframe

COLLECTORS_NAMESPACE = 'cloudkitty.collector.backends'

# The names of metrics_conf and quantity that collectors (the published
# guide's and doc/source/developer/collector.rst's) and the services import
# from here.

#: The schema of one metric definition
#: (:data:`cloudkitty.collector.metrics_conf.METRIC_BASE_SCHEMA`);
#: collectors that take ``extra_args`` extend it
#: (``voluptuous.Schema(METRIC_BASE_SCHEMA).extend(...)``).
METRIC_BASE_SCHEMA = metrics_conf.METRIC_BASE_SCHEMA
InvalidConfiguration = metrics_conf.InvalidConfiguration
ValidationContext = metrics_conf.ValidationContext
validate_metrics_conf = metrics_conf.validate_metrics_conf
load_metrics_conf = metrics_conf.load_metrics_conf
check_extra_args = metrics_conf.check_extra_args
one_of = metrics_conf.one_of
source_metric_name = metrics_conf.source_metric_name
time_keys = quantity.time_keys


class NoDataCollected(Exception):
    """The collector found no data for a metric in a period."""

    def __init__(self, collector, resource, scope=None):
        message = f"Collector '{collector}' returned no data for resource " \
                  f"'{resource}'"
        if scope is not None:
            message += f" and scope '{scope}'"
        super().__init__(message)
        self.collector = collector
        self.resource = resource
        self.scope = scope


class CollectError(Exception):
    """The data source failed (unreachable, bad answer, bad record...)."""

    def __init__(self, collector, metric, scope, reason):
        scope_txt = 'all scopes' if scope is None else f"scope '{scope}'"
        super().__init__(f"Collector '{collector}' failed to collect metric "
                         f"'{metric}' for {scope_txt}: {reason}")
        self.collector = collector
        self.metric = metric
        self.scope = scope
        self.reason = reason


# --- the base class ------------------------------------------------------------------

class BaseCollector(metaclass=abc.ABCMeta):
    """Base of every collector.

    Keyword arguments:

    - ``conf``: the metrics configuration, the content of metrics.yml or the
      output of :func:`validate_metrics_conf`; ``self.conf`` is the result
      of ``self.check_configuration(conf)``: ``{metric key: definition}``.
    - ``period``: collect period in seconds (default ``[collect] period``).
    - ``oslo_conf``: the ``oslo_config.cfg.ConfigOpts`` of the service
      (default ``cfg.CONF``, which third-party collectors read).
    - ``engine``: the process's database engine, given by
      :func:`get_collector` to the collectors that read the database (the
      meta collector); the others ignore it.

    Subclasses call ``super().__init__(**kwargs)`` and implement
    :meth:`fetch_all`; the processor calls :meth:`retrieve`.
    """

    collector_name = None

    #: ``True`` when :meth:`fetch_all` can collect several scopes in one
    #: call: given ``project_id=None`` and ``q_filter={scope_key: [scope
    #: ids]}``, it returns the points of those scopes (and maybe of others),
    #: each with the scope key in its groupby. :meth:`retrieve_many` then
    #: asks the source once instead of once per scope.
    grouped_collection = False

    def __init__(self, **kwargs):
        self.oslo_conf = kwargs.get('oslo_conf') or cfg.CONF
        self.scope_key = metrics_conf.scope_key_of(self.oslo_conf)
        if 'conf' not in kwargs:
            raise ValueError('Missing argument (conf): the metrics '
                             'configuration')
        self.period = kwargs.get('period')
        if self.period is None:
            try:
                self.period = self.oslo_conf.collect.period
            except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
                raise ValueError('Missing argument (period)') from None
        self.conf = validate_metrics_conf(kwargs['conf'], type(self),
                                          self.scope_key)
        if self.collector_name is None:
            self.collector_name = type(self).__name__
        self._transforms = {}

    @staticmethod
    def check_configuration(conf, context=None):
        """Check and validate the metrics configuration.

        :param conf: the content of metrics.yml (``{"metrics": {...}}``), or
            an already validated ``{key: definition}`` mapping
        :param context: a :class:`ValidationContext` (default:
            :func:`~cloudkitty.collector.metrics_conf.global_context`, the
            scope key of ``cfg.CONF``)
        :returns: ``{key: definition}``, each definition validated against
            :data:`METRIC_BASE_SCHEMA` and normalised (``alt_name`` set,
            the scope key added to ``groupby``)
        :raises InvalidConfiguration: naming the metric and the key

        Collectors that need ``extra_args`` override this: call this method
        first, then validate each definition against
        ``Schema(METRIC_BASE_SCHEMA).extend(<their extra_args schema>)``.
        An override that takes ``(conf, context)`` is handed the context
        and passes it on; one that takes ``conf`` alone (the published
        guide's) still works, with the scope key of ``cfg.CONF``.
        """
        return metrics_conf.validate_base(conf, context)

    @abc.abstractmethod
    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        """Fetch the usage of one metric in one period.

        Must honour the metric's ``groupby`` and ``metadata`` lists
        (``self.conf[metric_name]``). Quantities are returned as collected:
        :meth:`retrieve` applies factor, offset and mutate.

        :param metric_name: key of the metric in ``self.conf``
        :param start: start of the period (datetime)
        :param end: end of the period (datetime)
        :param project_id: the scope id (legacy name); queries filter on the
            attribute named by ``[collect] scope_key``
        :param q_filter: optional extra filters (dict)
        :returns: a list of :class:`cloudkitty.dataframe.DataPoint`
        """

    def _transform(self, metric_name):
        transform = self._transforms.get(metric_name)
        if transform is None:
            metric = self.conf[metric_name]
            convert = quantity.make_converter(metric.get('factor', 1),
                                              metric.get('offset', 0))
            mutator = quantity.make_mutator(metric.get('mutate', 'NONE'),
                                            metric.get('mutate_map'))
            if mutator is None:
                transform = convert
            else:
                def transform(qty, convert=convert, mutator=mutator):
                    return mutator(convert(qty))
            self._transforms[metric_name] = transform
        return transform

    def retrieve(self, metric_name, start, end, project_id=None,
                 q_filter=None):
        """Collect one metric for one period, converted and labelled.

        Runs :meth:`fetch_all`, applies factor, offset and mutate, adds the
        time keys of ``start`` to each point's groupby and the metric's
        description to each point.

        :returns: ``(alt_name, [DataPoint])``
        :raises NoDataCollected: the source had no data
        :raises CollectError: the source failed
        """
        metric = self._metric(metric_name, project_id)
        alt_name = metric.get('alt_name', metric_name)
        try:
            points = self.fetch_all(metric_name, start, end, project_id,
                                    q_filter=q_filter)
        except (NoDataCollected, CollectError):
            raise
        except Exception as exc:
            raise CollectError(self.collector_name, metric_name, project_id,
                               f'{type(exc).__name__}: {exc}') from exc
        if not points:
            raise NoDataCollected(self.collector_name, alt_name, project_id)
        return alt_name, self._finish(metric_name, metric, start, points)

    def retrieve_many(self, metric_name, start, end, scope_ids,
                      q_filter=None):
        """Collect one metric for one period for several scopes.

        With :attr:`grouped_collection`, one :meth:`fetch_all` call with
        ``project_id=None`` and ``q_filter`` narrowed to ``{scope_key:
        scope_ids}``; its points are split by their scope key, and the
        points of scopes not asked for are dropped. Otherwise one
        :meth:`retrieve` per scope.

        Each scope's points are converted as :meth:`retrieve` converts
        them, so that ``retrieve_many(m, s, e, [x])[x]`` equals
        ``retrieve(m, s, e, x)``.

        :returns: ``{scope_id: (alt_name, [DataPoint])}``; a scope without
            data is absent
        :raises CollectError: the source failed; for a grouped call its
            ``scope`` is ``None`` (all the scopes asked for)
        """
        scope_ids = list(dict.fromkeys(scope_ids))
        if not scope_ids:
            return {}
        if not self.grouped_collection:
            output = {}
            for scope_id in scope_ids:
                try:
                    output[scope_id] = self.retrieve(
                        metric_name, start, end, scope_id, q_filter)
                except NoDataCollected:
                    continue
            return output
        q_filter = dict(q_filter or {})
        q_filter[self.scope_key] = scope_ids
        try:
            alt_name, points = self.retrieve(metric_name, start, end, None,
                                             q_filter)
        except NoDataCollected:
            return {}
        wanted = set(scope_ids)
        by_scope = {}
        for point in points:
            scope_id = point.groupby.get(self.scope_key)
            if scope_id in wanted:
                by_scope.setdefault(scope_id, []).append(point)
        return {scope_id: (alt_name, by_scope[scope_id])
                for scope_id in scope_ids if scope_id in by_scope}

    def _metric(self, metric_name, project_id):
        """The definition of ``metric_name``.

        :raises CollectError: the metric is not in the configuration
        """
        try:
            return self.conf[metric_name]
        except KeyError:
            raise CollectError(self.collector_name, metric_name, project_id,
                               'metric not in the metrics configuration'
                               ) from None

    def _finish(self, metric_name, metric, start, points):
        """Converted quantities, time keys and description of ``points``."""
        transform = self._transform(metric_name)
        keys = quantity.time_keys(start)
        description = metric.get('description')
        output = []
        # _make skips DataPoint's conversions, already done on each field.
        make = dataframe.DataPoint._make
        proxy = types.MappingProxyType
        for point in points:
            output.append(make((
                point.unit, transform(point.qty), point.price,
                proxy({**point.groupby, **keys}), point.metadata,
                point.description if description is None else description)))
        return output


# --- loaders -----------------------------------------------------------------------

def load_collector_class(name):
    """Return the class of the collector named ``name`` (an entry point of
    ``cloudkitty.collector.backends``), not instantiated.

    :raises stevedore.exception.NoMatches: no such collector (or an error
        of its module's import)
    """
    return driver.DriverManager(COLLECTORS_NAMESPACE, name,
                                invoke_on_load=False).driver


def get_collector_class(conf):
    """Return the class of ``[collect] collector`` (not instantiated)."""
    return load_collector_class(conf.collect.collector)


def get_collector(conf, metrics_conf=None, engine=None):
    """Build the collector configured in ``conf``.

    :param conf: the service's ``ConfigOpts``
    :param metrics_conf: the metrics configuration (metrics.yml content or
        validated mapping); default: read ``[collect] metrics_conf``
    :param engine: the process's database engine, handed to the collector
        as ``engine=`` (the meta collector reads its mappings through it
        instead of building an engine of its own)
    :raises InvalidConfiguration: the metrics configuration is invalid
    """
    collector_class = get_collector_class(conf)
    scope_key = conf.collect.scope_key
    if metrics_conf is None:
        metrics_conf = load_metrics_conf(conf.collect.metrics_conf,
                                         collector_class, scope_key)
    else:
        metrics_conf = validate_metrics_conf(metrics_conf, collector_class,
                                             scope_key)
    extra = {} if engine is None else {'engine': engine}
    return collector_class(conf=metrics_conf, period=conf.collect.period,
                           oslo_conf=conf, **extra)
