"""Collectors: what gathers usage from a data source, per metric and scope.

This module holds the public surface third-party collectors import
(:class:`BaseCollector`, :data:`METRIC_BASE_SCHEMA`, the errors) and the
loaders of ``metrics.yml`` and of the configured collector.

The validated metric configuration is a flat mapping ``key -> definition``.
The key is the metric's name in the data source, unless that source metric
has several definitions (a list in ``metrics.yml``); then each definition's
key is ``<source name>@#<alt_name>`` (see :func:`source_metric_name`).

Quantities are converted with exact arithmetic: ``factor`` and ``offset`` are
kept as :class:`fractions.Fraction` (``"1/3"`` stays one third), and
``collected * factor + offset`` is computed as one rational number. Its
decimal form is exact whenever it has one (any factor whose denominator has
no prime factor but 2 and 5, e.g. ``1/1048576``); otherwise it is rounded
once, half-even, to :data:`QTY_PRECISION` significant digits.
"""

import abc
import collections.abc
import contextlib
import contextvars
import copy
import decimal
import fractions
import types

from oslo_config import cfg
from stevedore import driver
import voluptuous
import yaml

from cloudkitty.conf import collect as collect_opts
from cloudkitty import dataframe

COLLECTORS_NAMESPACE = 'cloudkitty.collector.backends'

#: Separator between the source metric name and the alt_name in the key of
#: a source metric that has several definitions.
KEY_SEPARATOR = '@#'

#: Significant digits of a converted quantity that has no exact decimal form.
QTY_PRECISION = 28

MUTATORS = ('NONE', 'NUMBOOL', 'NOTNUMBOOL', 'FLOOR', 'CEIL', 'MAP')

TIME_KEYS = ('week_of_the_year', 'day_of_the_year', 'month', 'year')


class InvalidConfiguration(ValueError):
    """metrics.yml (or a metric definition) is invalid.

    The message names the metric and the key at fault; ``metric`` and
    ``key`` hold them (either may be None when the fault is global).
    """

    def __init__(self, message, metric=None, key=None):
        super().__init__(message)
        self.metric = metric
        self.key = key


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


# --- metric definition schema -----------------------------------------------

def _to_fraction(value):
    """voluptuous validator: a number or a fraction string -> Fraction."""
    if isinstance(value, fractions.Fraction):
        return value
    if isinstance(value, bool) or not isinstance(
            value, (int, float, decimal.Decimal, str)):
        raise voluptuous.Invalid(
            f'expected a number or a fraction like "1/1024", got {value!r}')
    if isinstance(value, float):
        value = str(value)
    try:
        result = fractions.Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise voluptuous.Invalid(
            f'expected a number or a fraction like "1/1024", got {value!r}'
        ) from None
    return result


def _decimal(value):
    if isinstance(value, str):
        value = value.strip()
    try:
        return dataframe.to_decimal(value)
    except ValueError as exc:
        raise voluptuous.Invalid(str(exc)) from None


def _mutate_map(value):
    """voluptuous validator: a number -> number mapping, as Decimals."""
    if not isinstance(value, collections.abc.Mapping):
        raise voluptuous.Invalid('expected a mapping of number to number')
    return {_decimal(k): _decimal(v) for k, v in value.items()}


def _non_empty_str(value):
    if not isinstance(value, str) or not value.strip():
        raise voluptuous.Invalid(f'expected a non-empty string, got {value!r}')
    return value


def _mutator(value):
    if isinstance(value, str) and value.upper() in MUTATORS:
        return value.upper()
    raise voluptuous.Invalid(
        f'expected one of {", ".join(MUTATORS)}, got {value!r}')


#: The schema of one metric definition; collectors that take ``extra_args``
#: extend it (``voluptuous.Schema(METRIC_BASE_SCHEMA).extend(...)``).
#: Validating an already validated definition gives it back unchanged.
METRIC_BASE_SCHEMA = {
    # Human-readable description of the rating type, stored with each point.
    voluptuous.Optional('description'): str,
    voluptuous.Required('unit'): _non_empty_str,
    # Unit conversion: qty = collected * factor + offset.
    voluptuous.Required('factor', default=fractions.Fraction(1)): _to_fraction,
    voluptuous.Required('offset', default=fractions.Fraction(0)): _to_fraction,
    # Name used for rating, storage and the API; defaults to the metric name.
    voluptuous.Optional('alt_name'): _non_empty_str,
    voluptuous.Required('groupby', default=list): [_non_empty_str],
    voluptuous.Required('metadata', default=list): [_non_empty_str],
    voluptuous.Required('mutate', default='NONE'): _mutator,
    voluptuous.Optional('mutate_map'): _mutate_map,
    # Evaluated by the processor, not here.
    voluptuous.Optional('skip_datapoints_expression'): str,
    # Collector-specific; collectors validate it by extending this schema.
    voluptuous.Optional('extra_args'): dict,
}


# --- scope key ----------------------------------------------------------------

# check_configuration() is a one-argument static method (third-party
# collectors override it with that signature), so the scope key our loaders
# hold is handed to it through this context variable. Third-party code reads
# cfg.CONF, which the processor registers at start-up.
_SCOPE_KEY = contextvars.ContextVar('cloudkitty_scope_key', default=None)


@contextlib.contextmanager
def _context(variable, value):
    """Set the context variable ``variable`` to ``value`` inside the block."""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


def scope_key_context(scope_key):
    """Make :func:`current_scope_key` return ``scope_key`` inside the block
    (a context manager)."""
    return _context(_SCOPE_KEY, scope_key)


# For the same reason, the service's ConfigOpts reaches the collectors whose
# validation needs more than metrics.yml (the meta collector reads its
# mappings from the database) through this one.
_OSLO_CONF = contextvars.ContextVar('cloudkitty_oslo_conf', default=None)


def current_oslo_conf():
    """The ``ConfigOpts`` handed to :func:`validate_metrics_conf` (``None``
    outside it, or when it was given none)."""
    return _OSLO_CONF.get()


def _default_scope_key():
    return next(o.default for o in collect_opts.OPTS
                if o.name == 'scope_key')


def current_scope_key():
    """The scope key for metric validation.

    The one set by :func:`scope_key_context`, else ``cfg.CONF``'s
    ``[collect] scope_key`` when registered, else the option's default.
    """
    scope_key = _SCOPE_KEY.get()
    if scope_key is not None:
        return scope_key
    return _scope_key_of(cfg.CONF)


def _scope_key_of(conf):
    try:
        return conf.collect.scope_key
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        return _default_scope_key()


# --- validation of the whole configuration --------------------------------------

def source_metric_name(key):
    """Return the data-source metric name of a metric configuration key."""
    return key.split(KEY_SEPARATOR, 1)[0]


def _describe(error):
    """Render a voluptuous error as ``key 'a.b': message``."""
    errors = getattr(error, 'errors', None) or [error]
    parts = []
    for err in errors:
        path = '.'.join(str(p) for p in err.path)
        parts.append(f"key '{path}': {err.msg}" if path else err.msg)
    return '; '.join(parts)


def _first_key(error):
    errors = getattr(error, 'errors', None) or [error]
    path = errors[0].path
    return '.'.join(str(p) for p in path) if path else None


def _definitions(conf):
    """Yield ``(metric name, key, label, raw definition)`` from either form.

    ``conf`` is the content of metrics.yml (``{"metrics": {...}}``) or an
    already validated flat mapping ``key -> definition``.
    """
    if not isinstance(conf, collections.abc.Mapping):
        raise InvalidConfiguration(
            'metrics configuration: expected a mapping with a "metrics" key, '
            f'got {type(conf).__name__}', key='metrics')
    metrics = conf.get('metrics')
    if isinstance(metrics, collections.abc.Mapping) and 'unit' not in metrics:
        extra = set(conf) - {'metrics'}
        if extra:
            raise InvalidConfiguration(
                f'metrics configuration: unknown top-level key(s) '
                f'{", ".join(sorted(map(str, extra)))}', key=min(map(str, extra)))
        if not metrics:
            raise InvalidConfiguration(
                'metrics configuration: "metrics" defines no metric',
                key='metrics')
        for name, value in metrics.items():
            if not isinstance(name, str) or not name:
                raise InvalidConfiguration(
                    f'metrics configuration: metric name {name!r} is not a '
                    'non-empty string', metric=name)
            if isinstance(value, list):
                if not value:
                    raise InvalidConfiguration(
                        f"metric '{name}': empty list of definitions",
                        metric=name)
                for index, definition in enumerate(value):
                    alt = (definition.get('alt_name')
                           if isinstance(definition, dict) else None) or name
                    key = name if len(value) == 1 else \
                        f'{name}{KEY_SEPARATOR}{alt}'
                    label = name if len(value) == 1 else \
                        f'{name} (definition {index + 1})'
                    yield name, key, label, definition
            else:
                yield name, name, name, value
    elif 'metrics' in conf and 'unit' not in (metrics or {}):
        raise InvalidConfiguration(
            'metrics configuration: "metrics" must be a mapping of metric '
            'name to definition', key='metrics')
    elif not conf:
        raise InvalidConfiguration(
            'metrics configuration: required key "metrics" is missing',
            key='metrics')
    else:
        for key, definition in conf.items():
            yield source_metric_name(key), key, key, definition


def _check_metric(label, metric, scope_key):
    """Cross-key rules of one validated definition; normalises it in place."""
    if metric['mutate'] == 'MAP' and 'mutate_map' not in metric:
        raise InvalidConfiguration(
            f"metric '{label}': key 'mutate_map' is required with mutate MAP",
            metric=label, key='mutate_map')
    if metric['mutate'] != 'MAP' and 'mutate_map' in metric:
        raise InvalidConfiguration(
            f"metric '{label}': key 'mutate_map' is only allowed with mutate "
            f"MAP (mutate is {metric['mutate']})",
            metric=label, key='mutate_map')
    groupby = list(dict.fromkeys(metric['groupby']))
    if scope_key not in groupby:
        groupby.append(scope_key)
    metadata = list(dict.fromkeys(metric['metadata']))
    both = [k for k in metadata if k in groupby]
    if both:
        extra = ' (the scope key is always grouped by)' \
            if scope_key in both else ''
        raise InvalidConfiguration(
            f"metric '{label}': key 'metadata': {', '.join(both)} also in "
            f"groupby{extra}; a key may be in only one of them",
            metric=label, key='metadata')
    metric['groupby'] = groupby
    metric['metadata'] = metadata


def _validate_base(conf):
    scope_key = current_scope_key()
    schema = voluptuous.Schema(METRIC_BASE_SCHEMA)
    output = {}
    owners = {}  # alt_name -> label of the definition that uses it
    for name, key, label, definition in _definitions(conf):
        if not isinstance(definition, collections.abc.Mapping):
            raise InvalidConfiguration(
                f"metric '{label}': expected a mapping of keys, got "
                f"{type(definition).__name__}", metric=label)
        try:
            # A copy: validated output must never share a mutable value
            # (extra_args...) with the caller's configuration.
            metric = schema(copy.deepcopy(dict(definition)))
        except voluptuous.Invalid as exc:
            raise InvalidConfiguration(
                f"metric '{label}': {_describe(exc)}",
                metric=label, key=_first_key(exc)) from None
        metric.setdefault('alt_name', name)
        _check_metric(label, metric, scope_key)
        alt_name = metric['alt_name']
        if key in output or alt_name in owners:
            other = owners.get(alt_name, label)
            raise InvalidConfiguration(
                f"metric '{label}': key 'alt_name': '{alt_name}' is already "
                f"the name of metric '{other}'; two definitions must differ "
                "by alt_name", metric=label, key='alt_name')
        owners[alt_name] = label
        output[key] = metric
    return output


def _locate(collector_class, conf):
    """Find the metric whose definition alone makes validation fail."""
    try:
        items = [(key, {'metrics': {name: definition}})
                 for name, key, label, definition in _definitions(conf)
                 if key == name]
        items += [(key, {key: definition}) for name, key, label, definition
                  in _definitions(conf) if key != name]
    except InvalidConfiguration:
        return None
    for key, single in items:
        try:
            collector_class.check_configuration(single)
        except Exception:  # noqa: BLE001 - any failure pins the metric
            return key
    return None


def validate_metrics_conf(conf, collector_class=None, scope_key=None,
                          oslo_conf=None):
    """Validate a metrics configuration with a collector's rules.

    :param conf: the content of metrics.yml, or an already validated mapping
    :param collector_class: the collector whose ``check_configuration`` runs
        (default: :class:`BaseCollector`, the base schema only)
    :param scope_key: the ``[collect] scope_key`` to add to each groupby
        (default: :func:`current_scope_key`)
    :param oslo_conf: the service's ``ConfigOpts``, which
        ``check_configuration`` reads through :func:`current_oslo_conf`
        (the meta collector validates each metric with the collector the
        database maps it to only when given one)
    :returns: ``{key: definition}``, each definition normalised (``alt_name``
        set, ``factor``/``offset`` as Fraction, scope key in ``groupby``)
    :raises InvalidConfiguration: naming the metric and the key at fault
    """
    collector_class = collector_class or BaseCollector
    scope_key = scope_key or current_scope_key()
    with scope_key_context(scope_key), _context(_OSLO_CONF, oslo_conf):
        try:
            output = collector_class.check_configuration(conf)
        except InvalidConfiguration:
            raise
        except (voluptuous.Error, KeyError, TypeError, ValueError) as exc:
            metric = _locate(collector_class, conf)
            where = f"metric '{metric}': " if metric else ''
            detail = _describe(exc) if isinstance(exc, voluptuous.Invalid) \
                else f'{type(exc).__name__}: {exc}'
            key = _first_key(exc) if isinstance(exc, voluptuous.Invalid) \
                else None
            raise InvalidConfiguration(f'{where}{detail}', metric=metric,
                                       key=key) from None
    if not isinstance(output, collections.abc.Mapping) or not output:
        raise InvalidConfiguration(
            f'{collector_class.__name__}.check_configuration returned no '
            'metric')
    return output


def check_extra_args(conf, extra_schema):
    """Validate definitions already checked by the base against
    ``Schema(METRIC_BASE_SCHEMA).extend(extra_schema)``.

    The helper of a collector's ``check_configuration`` override.

    :returns: ``{key: definition}`` with the extended schema's defaults
    :raises InvalidConfiguration: naming the metric and the key
    """
    schema = voluptuous.Schema(METRIC_BASE_SCHEMA).extend(extra_schema)
    output = {}
    for key, metric in conf.items():
        try:
            output[key] = schema(metric)
        except voluptuous.Invalid as exc:
            raise InvalidConfiguration(
                f"metric '{key}': {_describe(exc)}",
                metric=key, key=_first_key(exc)) from None
    return output


def one_of(choices):
    """voluptuous validator: a value of ``choices``, else a message naming
    the value and the allowed ones."""
    def validate(value):
        if value in choices:
            return value
        raise voluptuous.Invalid(
            f'expected one of {", ".join(choices)}, got {value!r}')
    return validate


def load_metrics_conf(path, collector_class=None, scope_key=None,
                      oslo_conf=None):
    """Read and validate a metrics.yml file (the arguments after ``path``
    are :func:`validate_metrics_conf`'s).

    :returns: the validated ``{key: definition}`` mapping (see
        :func:`validate_metrics_conf`)
    :raises InvalidConfiguration: unreadable file, YAML error or invalid
        content; the message names the file, and the metric and key at fault
    """
    try:
        with open(path, encoding='utf-8') as stream:
            content = yaml.safe_load(stream)
    except OSError as exc:
        raise InvalidConfiguration(
            f'{path}: cannot read the metrics configuration: '
            f'{exc.strerror or exc}') from None
    except yaml.YAMLError as exc:
        raise InvalidConfiguration(f'{path}: invalid YAML: {exc}') from None
    if not isinstance(content, dict) or 'metrics' not in content:
        raise InvalidConfiguration(
            f'{path}: required top-level key "metrics" is missing',
            key='metrics')
    try:
        return validate_metrics_conf(content, collector_class, scope_key,
                                     oslo_conf)
    except InvalidConfiguration as exc:
        raise InvalidConfiguration(f'{path}: {exc}', metric=exc.metric,
                                   key=exc.key) from None


# --- quantity conversion ----------------------------------------------------------

# Enough digits for any exact product or sum of the quantities we meet;
# decimal's cost follows the digits of the operands, not this limit.
_EXACT = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_EVEN,
                         Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_ROUNDED = decimal.Context(prec=QTY_PRECISION,
                           rounding=decimal.ROUND_HALF_EVEN,
                           Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _only_2_and_5(number):
    for prime in (2, 5):
        while number % prime == 0:
            number //= prime
    return number == 1


def make_converter(factor=1, offset=0):
    """Return ``f(qty) -> qty * factor + offset`` over Decimals.

    ``factor`` and ``offset`` are anything :data:`METRIC_BASE_SCHEMA`
    accepts. The result is exact when it has a finite decimal form, else
    rounded half-even to :data:`QTY_PRECISION` significant digits.
    """
    factor, offset = _to_fraction(factor), _to_fraction(offset)
    if factor == 1 and offset == 0:
        return dataframe.to_decimal
    # qty * fn/fd + on/od == (qty * fn*od + on*fd) / (fd*od)
    multiplier = decimal.Decimal(factor.numerator * offset.denominator)
    addend = decimal.Decimal(offset.numerator * factor.denominator)
    divisor = factor.denominator * offset.denominator
    divisor_dec = decimal.Decimal(divisor)
    exact_division = _only_2_and_5(divisor)

    def convert(qty):
        numerator = _EXACT.add(_EXACT.multiply(dataframe.to_decimal(qty),
                                               multiplier), addend)
        if divisor == 1:
            return numerator
        context = _EXACT if exact_division else _ROUNDED
        return context.divide(numerator, divisor_dec)

    return convert


def _ceil(qty):
    return qty.to_integral_value(rounding=decimal.ROUND_CEILING)


def _floor(qty):
    return qty.to_integral_value(rounding=decimal.ROUND_FLOOR)


_ZERO, _ONE = decimal.Decimal(0), decimal.Decimal(1)


def make_mutator(mutate='NONE', mutate_map=None):
    """Return the ``f(Decimal) -> Decimal`` of a ``mutate`` mode."""
    if mutate == 'NUMBOOL':
        return lambda qty: _ONE if qty != 0 else _ZERO
    if mutate == 'NOTNUMBOOL':
        return lambda qty: _ZERO if qty != 0 else _ONE
    if mutate == 'FLOOR':
        return _floor
    if mutate == 'CEIL':
        return _ceil
    if mutate == 'MAP':
        mapping = _mutate_map(mutate_map or {})
        return lambda qty: mapping.get(qty, _ZERO)
    return None


def time_keys(start):
    """The four time groupby keys of the period starting at ``start``."""
    return {
        'week_of_the_year': start.strftime('%U'),
        'day_of_the_year': str(start.timetuple().tm_yday),
        'month': str(start.month),
        'year': str(start.year),
    }


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
        self.scope_key = _scope_key_of(self.oslo_conf)
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
    def check_configuration(conf):
        """Check and validate the metrics configuration.

        :param conf: the content of metrics.yml (``{"metrics": {...}}``), or
            an already validated ``{key: definition}`` mapping
        :returns: ``{key: definition}``, each definition validated against
            :data:`METRIC_BASE_SCHEMA` and normalised (``alt_name`` set,
            the scope key added to ``groupby``)
        :raises InvalidConfiguration: naming the metric and the key

        Collectors that need ``extra_args`` override this: call this method
        first, then validate each definition against
        ``Schema(METRIC_BASE_SCHEMA).extend(<their extra_args schema>)``.
        """
        return _validate_base(conf)

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
            convert = make_converter(metric.get('factor', 1),
                                     metric.get('offset', 0))
            mutator = make_mutator(metric.get('mutate', 'NONE'),
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
        try:
            metric = self.conf[metric_name]
        except KeyError:
            raise CollectError(self.collector_name, metric_name, project_id,
                               'metric not in the metrics configuration'
                               ) from None
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

    def _finish(self, metric_name, metric, start, points):
        """Converted quantities, time keys and description of ``points``."""
        transform = self._transform(metric_name)
        keys = time_keys(start)
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


def get_collector(conf, metrics_conf=None):
    """Build the collector configured in ``conf``.

    :param conf: the service's ``ConfigOpts``
    :param metrics_conf: the metrics configuration (metrics.yml content or
        validated mapping); default: read ``[collect] metrics_conf``
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
    return collector_class(conf=metrics_conf, period=conf.collect.period,
                           oslo_conf=conf)
