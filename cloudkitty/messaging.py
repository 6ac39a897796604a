"""The processors' RPC protocol, shared by the API and the processors.

The API holds a :class:`ProcessorClient`; every processor host serves the
other side (:mod:`cloudkitty.orchestrator.rpc`, the ``cloudkitty-rpc``
worker of ``cloudkitty-processor``), listening on the topic ``cloudkitty``
of ``[DEFAULT] transport_url``. Both import this module; the API imports
nothing of the processor.

- ``reset_state`` is a *cast* to the topic, one per scope: the broker hands
  each message to exactly one server, which waits (up to
  ``[orchestrator] reset_lock_timeout``) for the scope's tooz lock, so the
  reset never runs beside the rating of that scope, then sets the scope's
  state and deletes its stored data from the new timestamp on. A fanout
  would have every processor try; with a non-blocking lock a scope being
  rated would make them all give up, and with a blocking one they would all
  reset it in turn. One message per scope lets several processors share a
  reset of many scopes, and one busy scope does not hold up the others.
  A reset whose lock stays busy past the timeout, or that fails, is logged
  by the processor and dropped (a cast has nobody to answer to).
  The cast is published *mandatory* (oslo.messaging's ``at_least_once``):
  a broker that has no queue for the topic returns it instead of dropping
  it, and the API answers 503 rather than accepting a reset nobody will
  apply. That is the case when no processor runs, and after a broker
  restart until the processors have declared their queues again (queues
  that were not durable do not survive it).
- ``quote`` is a *call* with a timeout (``[api] quote_timeout``): a server
  prices the frame with the enabled rating modules and their current rules
  and answers the total.

oslo.messaging sends JSON: Decimals travel as strings, dates as ISO 8601
strings, and both are parsed back on arrival (:func:`frame_to_wire`,
:func:`frame_from_wire`); a float never carries a price.

oslo.messaging itself is imported on first use (:func:`register_opts`,
:func:`get_transport`, :class:`ProcessorClient`), not with this module: it
brings eventlet, kombu and amqp, about 6 MiB, which an API without
``[DEFAULT] transport_url`` never uses (:func:`is_configured` answers
without it).
"""

import importlib

from oslo_config import cfg

from cloudkitty import dataframe

TOPIC = 'cloudkitty'
VERSION = '1.0'
# Connection attempts of the API before a send counts as failed; without a
# bound the rabbit driver retries forever and the request never ends.
SEND_RETRY = 2
#: What names a scope in a reset, besides its id.
SCOPE_PARTS = ('scope_key', 'fetcher', 'collector')

#: Option groups oslo.messaging reads from the conf it is given but
#: registers on ``cfg.CONF`` only, from private modules, and leaves out of
#: its ``list_opts()``: see :func:`register_opts`.
GLOBAL_ONLY_OPTS = (
    ('oslo_messaging._metrics.client', 'oslo_messaging_metrics'),
    ('oslo_messaging._tracing.client', 'oslo_messaging_tracing'),
)


class ProcessorUnavailable(Exception):
    """No processor could be reached, or none answered in time."""


class QuoteFailed(Exception):
    """The processor that took the quote could not price it."""


def _oslo_messaging(module='oslo_messaging'):
    # Imported here, on first use: see the module's docstring.
    return importlib.import_module(module)


def register_opts(conf):
    """Register oslo.messaging's options on ``conf``; harmless if already
    there. A service does it once, before it asks :func:`is_configured` or
    :func:`get_transport`.

    The ``[DEFAULT]`` ones (``transport_url``, ``rpc_response_timeout``...)
    come from oslo.messaging's public ``list_opts()``. The groups of
    :data:`GLOBAL_ONLY_OPTS` do not: oslo.messaging reads them from the
    conf it is given (its RPC client and server look at
    ``conf.oslo_messaging_metrics`` and ``conf.oslo_messaging_tracing``)
    but registers them on ``cfg.CONF`` alone, in private modules. This is
    the one place that reaches into them, as oslo.messaging's own
    ``ConfFixture`` does; ``tests/unit/test_rpc.py`` fails when they move or
    when ``list_opts()`` starts to list them (this adapter can then go).
    A version without them is skipped.
    """
    for group, options in _oslo_messaging('oslo_messaging.opts').list_opts():
        if group is None:
            conf.register_opts(options)
    for module_name, name in GLOBAL_ONLY_OPTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # not in this oslo.messaging version
            continue
        conf.register_opts(getattr(module, name), group=name)
    return conf


def is_configured(conf):
    """Whether ``[DEFAULT] transport_url`` is set (in a file, in the
    environment or by an override); oslo.messaging's own default does not
    count. ``conf`` is parsed.

    Where oslo.messaging's options are not registered on ``conf`` (the
    API registers them only when this is true), the answer comes from the
    configuration files and directories ``conf`` was parsed from, and the
    environment, read again for this one option: oslo.messaging is not
    imported. An override needs the option registered, and so takes the
    other way.
    """
    if 'transport_url' not in conf:
        probe = cfg.ConfigOpts()
        probe.register_opt(cfg.StrOpt('transport_url'))
        probe(args=[], project=conf.project,
              default_config_files=list(conf.config_file),
              default_config_dirs=list(conf.config_dirs))
        return probe.transport_url is not None
    location = conf.get_location('transport_url').location
    return location not in (cfg.Locations.opt_default,
                            cfg.Locations.set_default)


def get_transport(conf, url=None):
    """The RPC transport of ``url`` (default: ``[DEFAULT] transport_url``).

    Nothing connects before the first message or the server's start. The
    options are registered (:func:`register_opts`).
    """
    return _oslo_messaging().get_rpc_transport(conf, url=url)


# The wire format -----------------------------------------------------------

def frame_to_wire(frame):
    """``frame`` as JSON-native values: Decimals and dates as strings."""
    return {
        'period': {'begin': frame.start.isoformat(),
                   'end': frame.end.isoformat()},
        'usage': {type_: [_point_to_wire(point) for point in points]
                  for type_, points in frame.itertypes()},
    }


def _point_to_wire(point):
    wire = point.as_dict(mutable=True)
    wire['vol']['qty'] = str(point.qty)
    wire['rating']['price'] = str(point.price)
    return wire


def frame_from_wire(wire):
    """The :class:`~cloudkitty.dataframe.DataFrame` of :func:`frame_to_wire`.

    Raises ``ValueError`` for anything else, a float quantity or price
    included (it would not be exact).
    """
    for points in (wire.get('usage') or {}).values():
        for point in points or ():
            numbers = ((point.get('vol') or {}).get('qty'),
                       (point.get('rating') or {}).get('price', '0'))
            if not all(isinstance(number, str) for number in numbers):
                raise ValueError(f'quantities and prices travel as strings, '
                                 f'got {numbers!r}')
    return dataframe.DataFrame.from_dict(wire)


def price_from_wire(value):
    """The Decimal of a price sent as a string; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f'a price travels as a string, got {value!r}')
    return dataframe.to_decimal(value)


def total_price(frame):
    """The sum of the prices of ``frame``'s points (a Decimal)."""
    return sum((point.price for _type, point in frame.iterpoints()),
               dataframe.to_decimal(0))


# The API's side -------------------------------------------------------------

class ProcessorClient:
    """What the API asks of the processors.

    :param transport: an oslo.messaging RPC transport (:func:`get_transport`)
    :param quote_timeout: seconds to wait for a quote's answer
    :param owns_transport: :meth:`close` cleans the transport up
    :param topic: the processors' topic (tests use their own)
    """

    def __init__(self, transport, quote_timeout, owns_transport=False,
                 topic=TOPIC):
        self._transport = transport
        self._owns_transport = owns_transport
        self._messaging = oslo_messaging = _oslo_messaging()
        self._client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic, version=VERSION),
            retry=SEND_RETRY)
        self._quote_timeout = quote_timeout

    @classmethod
    def from_conf(cls, conf):
        """A client on ``[DEFAULT] transport_url``, ``[api] quote_timeout``."""
        return cls(get_transport(conf), conf.api.quote_timeout,
                   owns_transport=True)

    def reset_state(self, scopes, last_processed_timestamp):
        """Ask for each scope's reset; returns once the messages are sent.

        ``scopes`` is a list of ``{"scope_id", "scope_key", "fetcher",
        "collector"}``, ``last_processed_timestamp`` an aware datetime.
        Raises :class:`ProcessorUnavailable` if the broker cannot be
        reached or no processor listens (the scopes before the failure
        were sent).
        """
        timestamp = last_processed_timestamp.isoformat()
        # Published mandatory: returned by a broker no queue takes it from.
        cast = self._client.prepare(
            transport_options=self._messaging.TransportOptions(
                at_least_once=True))
        for scope in scopes:
            message = {'scope_id': scope['scope_id'],
                       **{part: scope[part] for part in SCOPE_PARTS}}
            try:
                cast.cast({}, 'reset_state', scope=message,
                          last_processed_timestamp=timestamp)
            except self._messaging.MessageUndeliverable:
                raise ProcessorUnavailable(
                    f'the reset of scope {scope["scope_id"]} was returned '
                    f'by the broker: no processor listens (none runs, or '
                    f'none has reconnected since the broker restarted)'
                ) from None
            except Exception as exc:  # drivers raise their own errors
                raise ProcessorUnavailable(
                    f'the reset of scope {scope["scope_id"]} could not be '
                    f'sent to the processors: {exc.__class__.__name__}: '
                    f'{first_line(exc)}') from exc

    def quote(self, frame):
        """The total price of ``frame`` (a Decimal), priced by a processor.

        Raises :class:`ProcessorUnavailable` when no processor answers
        within the timeout (or the broker is unreachable, or the processor
        cannot take the message) and :class:`QuoteFailed` when the
        processor failed to price it.
        """
        call = self._client.prepare(timeout=self._quote_timeout)
        wire = frame_to_wire(frame)
        try:
            answer = call.call({}, 'quote', frame=wire)
        except self._messaging.MessagingTimeout:
            raise ProcessorUnavailable(
                f'no processor answered the quote within '
                f'{self._quote_timeout:g}s') from None
        except Exception as exc:  # drivers raise their own errors
            raise ProcessorUnavailable(
                f'the quote could not be handed to the processors: '
                f'{exc.__class__.__name__}: {first_line(exc)}') from exc
        if not isinstance(answer, dict):
            raise QuoteFailed(f'unexpected answer {answer!r}')
        if 'error' in answer:
            raise QuoteFailed(str(answer['error']))
        try:
            return price_from_wire(answer.get('price'))
        except ValueError as exc:
            raise QuoteFailed(str(exc)) from None

    def close(self):
        """Release the transport (its connections and threads) if owned."""
        if self._owns_transport:
            self._transport.cleanup()


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else ''
