"""metrics.yml: the schema of a metric definition and its validation.

The validated metric configuration is a flat mapping ``key -> definition``.
The key is the metric's name in the data source, unless that source metric
has several definitions (a list in ``metrics.yml``); then each definition's
key is ``<source name>@#<alt_name>`` (see :func:`source_metric_name`).

Contents: :data:`METRIC_BASE_SCHEMA` and the voluptuous validators it is
made of (public ones for collectors' ``extra_args`` schemas:
:func:`non_empty_str`, :func:`one_of`, :func:`to_fraction`,
:func:`mutate_map`), :class:`ValidationContext` (what a collector's
``check_configuration(conf, context)`` is handed), :func:`validate_metrics_conf`,
:func:`load_metrics_conf` and :func:`check_extra_args` (the helper of a
collector's ``check_configuration``). :mod:`cloudkitty.collector`
re-exports the names third-party collectors import.
"""

import collections.abc
import copy
import dataclasses
import decimal
import fractions
import inspect

from oslo_config import cfg
import voluptuous
import yaml

from cloudkitty.conf import collect as collect_opts
from cloudkitty import dataframe

#: Separator between the source metric name and the alt_name in the key of
#: a source metric that has several definitions.
KEY_SEPARATOR = '@#'

MUTATORS = ('NONE', 'NUMBOOL', 'NOTNUMBOOL', 'FLOOR', 'CEIL', 'MAP')


class InvalidConfiguration(ValueError):
    """metrics.yml (or a metric definition) is invalid.

    The message names the metric and the key at fault; ``metric`` and
    ``key`` hold them (either may be None when the fault is global).
    """

    def __init__(self, message, metric=None, key=None):
        super().__init__(message)
        self.metric = metric
        self.key = key


# --- metric definition schema -----------------------------------------------

def to_fraction(value):
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


def mutate_map(value):
    """voluptuous validator: a number -> number mapping, as Decimals."""
    if not isinstance(value, collections.abc.Mapping):
        raise voluptuous.Invalid('expected a mapping of number to number')
    return {dataframe.decimal_number(k): dataframe.decimal_number(v)
            for k, v in value.items()}


def non_empty_str(value):
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
    voluptuous.Required('unit'): non_empty_str,
    # Unit conversion: qty = collected * factor + offset.
    voluptuous.Required('factor', default=fractions.Fraction(1)): to_fraction,
    voluptuous.Required('offset', default=fractions.Fraction(0)): to_fraction,
    # Name used for rating, storage and the API; defaults to the metric name.
    voluptuous.Optional('alt_name'): non_empty_str,
    voluptuous.Required('groupby', default=list): [non_empty_str],
    voluptuous.Required('metadata', default=list): [non_empty_str],
    voluptuous.Required('mutate', default='NONE'): _mutator,
    voluptuous.Optional('mutate_map'): mutate_map,
    # Evaluated by the processor, not here.
    voluptuous.Optional('skip_datapoints_expression'): str,
    # Collector-specific; collectors validate it by extending this schema.
    voluptuous.Optional('extra_args'): dict,
}


# --- what validation is handed beyond metrics.yml ------------------------------

@dataclasses.dataclass(frozen=True)
class ValidationContext:
    """What a collector's ``check_configuration(conf, context)`` is handed
    beside the metrics configuration.

    - ``scope_key``: the ``[collect] scope_key``, added to every groupby;
    - ``conf``: the service's ``oslo_config.cfg.ConfigOpts``, or ``None``:
      then only metrics.yml is checked (the meta collector does not read
      its mappings);
    - ``engine``: the process's database engine, or ``None``: a collector
      that reads the database for its validation (the meta collector) then
      opens one of ``conf``'s ``[database] connection`` for the read.
    """

    scope_key: str
    conf: object = None
    engine: object = None


def _default_scope_key():
    return next(o.default for o in collect_opts.OPTS
                if o.name == 'scope_key')


def scope_key_of(conf):
    """``conf``'s ``[collect] scope_key``, or the option's default when
    ``conf`` has not registered it."""
    try:
        return conf.collect.scope_key
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        return _default_scope_key()


def global_context():
    """The context of a validation given none: ``cfg.CONF``'s scope key.

    The fallback the published collector guide promises third-party
    overrides, written as ``check_configuration(conf)``: they call
    ``BaseCollector.check_configuration(conf)`` without a context, and read
    ``cfg.CONF``, which the services register at start-up.
    """
    return ValidationContext(scope_key_of(cfg.CONF))


def accepts_context(check):
    """Whether ``check`` (a ``check_configuration``) takes the context as
    its second positional argument; the guide's one-argument overrides
    do not."""
    try:
        parameters = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(
        p.kind == p.VAR_POSITIONAL for p in parameters)


def _run(check, conf, context):
    return check(conf, context) if accepts_context(check) else check(conf)


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


def validate_base(conf, context=None):
    """The base rules (:data:`METRIC_BASE_SCHEMA` and the cross-key rules)
    of :meth:`cloudkitty.collector.BaseCollector.check_configuration`;
    the scope key is ``context``'s (default: :func:`global_context`)."""
    scope_key = (context or global_context()).scope_key
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


def _locate(check, conf, context):
    """Find the metric whose definition alone makes ``check`` fail."""
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
            _run(check, single, context)
        except Exception:  # noqa: BLE001 - any failure pins the metric
            return key
    return None


def validate_metrics_conf(conf, collector_class=None, scope_key=None,
                          oslo_conf=None, engine=None):
    """Validate a metrics configuration with a collector's rules.

    :param conf: the content of metrics.yml, or an already validated mapping
    :param collector_class: the collector whose ``check_configuration`` runs
        (default: the base rules only, :func:`validate_base`)
    :param scope_key: the ``[collect] scope_key`` to add to each groupby
        (default: ``oslo_conf``'s, else :func:`global_context`'s)
    :param oslo_conf: the service's ``ConfigOpts`` (the meta collector
        validates each metric with the collector the database maps it to
        only when given one)
    :param engine: the process's database engine, for the collectors that
        read the database to validate (default: none, see
        :class:`ValidationContext`)

    The three last arguments make the :class:`ValidationContext` handed to
    ``check_configuration(conf, context)``; an override that takes one
    argument (the published guide's) is called with ``conf`` alone.
    :returns: ``{key: definition}``, each definition normalised (``alt_name``
        set, ``factor``/``offset`` as Fraction, scope key in ``groupby``)
    :raises InvalidConfiguration: naming the metric and the key at fault
    """
    check = collector_class.check_configuration if collector_class \
        else validate_base
    context = ValidationContext(
        scope_key or scope_key_of(cfg.CONF if oslo_conf is None
                                  else oslo_conf), oslo_conf, engine)
    try:
        output = _run(check, conf, context)
    except InvalidConfiguration:
        raise
    except (voluptuous.Error, KeyError, TypeError, ValueError) as exc:
        metric = _locate(check, conf, context)
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
                      oslo_conf=None, engine=None):
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
                                     oslo_conf, engine)
    except InvalidConfiguration as exc:
        raise InvalidConfiguration(f'{path}: {exc}', metric=exc.metric,
                                   key=exc.key) from None
