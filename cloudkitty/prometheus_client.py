"""A small client of the Prometheus HTTP API: instant queries.

Used by the ``prometheus`` collector and fetcher. Every failure (server
unreachable, no answer in time, HTTP error, an answer that is not the
documented JSON) is one :class:`PrometheusError` whose message names the
URL queried and what went wrong, never the credentials.
"""

import contextlib
import datetime
import json
import threading
import time

import requests
from urllib3 import exceptions as urllib3_exceptions


#: Most bytes read at a time from an answer.
_CHUNK = 65536
# The query's "time" argument shadows the module inside query().
_monotonic = time.monotonic


class PrometheusError(Exception):
    """Prometheus could not be queried or gave no usable answer."""


class PrometheusClient:
    """Instant queries against one Prometheus server.

    :param url: base URL of the server (the API is under ``/api/v1``)
    :param user: user for HTTP basic authentication (none if empty)
    :param password: its password
    :param cafile: certificate authority file verifying HTTPS
    :param insecure: do not verify HTTPS certificates (ignored with cafile)
    :param timeout: seconds to wait for the connection and for each part
        of the answer, and for the whole answer

    Safe to use from several threads: each thread has its own HTTP session
    (and so its own kept-alive connections).
    """

    def __init__(self, url, user=None, password=None, cafile=None,
                 insecure=False, timeout=60):
        if not url:
            raise PrometheusError('no Prometheus URL configured '
                                  '(prometheus_url is empty)')
        self.url = url.rstrip('/')
        self.query_url = f'{self.url}/api/v1/query'
        self._auth = (user, password or '') if user else None
        self._verify = cafile or not insecure
        self.timeout = timeout
        self._local = threading.local()

    @classmethod
    def from_conf(cls, group):
        """Build a client from an option group holding the options of
        :func:`cloudkitty.conf.collector_prometheus.connection_opts`."""
        return cls(group.prometheus_url, group.prometheus_user,
                   group.prometheus_password, group.cafile, group.insecure,
                   group.timeout)

    def _session(self):
        session = getattr(self._local, 'session', None)
        if session is None:
            session = self._local.session = requests.Session()
            session.auth = self._auth
            session.verify = self._verify
        return session

    def query(self, promql, time=None):
        """Evaluate ``promql`` at ``time`` (a datetime; default: now).

        :returns: the result vector, a list of ``{"metric": {label: value},
            "value": [timestamp, "<number as text>"]}``; values are left as
            the server's text, for the caller to read exactly
        :raises PrometheusError: naming the URL and the cause
        """
        form = {'query': promql}
        if time is not None:
            form['time'] = _rfc3339(time)
        deadline = _monotonic() + self.timeout
        try:
            # POST: a query naming many scopes may be longer than a URL.
            response = self._session().post(self.query_url, data=form,
                                            timeout=self.timeout, stream=True)
            with contextlib.closing(response):
                content = self._read(response, deadline)
        except requests.Timeout:
            raise PrometheusError(
                f'{self.query_url}: no answer within {self.timeout}s'
            ) from None
        except urllib3_exceptions.ReadTimeoutError:
            # While the body is read: a slow server, not an unreachable one.
            raise PrometheusError(
                f'{self.query_url}: the answer stalled: nothing more '
                f'within {self.timeout}s') from None
        except urllib3_exceptions.ProtocolError as exc:
            # While the body is read: the first argument says what broke.
            raise PrometheusError(
                f'{self.query_url}: the connection broke before the end of '
                f'the answer: {exc.args[0] if exc.args else exc}') from None
        except (requests.RequestException,
                urllib3_exceptions.HTTPError) as exc:
            raise PrometheusError(
                f'{self.query_url}: {exc.__class__.__name__}: {exc}'
            ) from None
        return self._result(response.status_code, content)

    def _read(self, response, deadline):
        """The body of ``response``, whole before ``deadline`` (monotonic
        seconds): ``timeout`` bounds each read, and a server trickling its
        answer would otherwise hold the collecting thread for as long as it
        keeps sending."""
        chunks = []
        # What has arrived, each time (iter_content() waits for a whole
        # chunk, or the whole answer).
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            chunks.append(chunk)
            if _monotonic() > deadline:
                raise PrometheusError(
                    f'{self.query_url}: the answer took more than '
                    f'{self.timeout}s')
        return b''.join(chunks)

    def _result(self, status, content):
        text = content.decode('utf-8', 'replace')
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status != 200:
            if isinstance(body, dict) and 'error' in body:
                detail = f"{body.get('errorType', 'error')}: {body['error']}"
            else:
                detail = ' '.join(text.split())[:200]
            raise PrometheusError(
                f'{self.query_url}: HTTP {status}: {detail}')
        if not isinstance(body, dict) or body.get('status') != 'success':
            raise PrometheusError(
                f'{self.query_url}: not a successful Prometheus answer: '
                f'{text[:200]!r}')
        data = body.get('data')
        if not isinstance(data, dict) or data.get('resultType') != 'vector':
            kind = data.get('resultType') if isinstance(data, dict) else None
            raise PrometheusError(
                f'{self.query_url}: expected an instant vector, got '
                f'{kind!r}')
        result = data.get('result')
        if not isinstance(result, list) or not all(
                _is_sample(item) for item in result):
            raise PrometheusError(
                f'{self.query_url}: malformed vector in the answer: '
                f'{text[:200]!r}')
        return result


def _is_sample(item):
    return (isinstance(item, dict) and isinstance(item.get('metric'), dict)
            and isinstance(item.get('value'), list)
            and len(item['value']) == 2 and isinstance(item['value'][1], str))


def _rfc3339(moment):
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat()
