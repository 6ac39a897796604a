"""The real ``cloudkitty-processor`` says how it is doing: ``/metrics`` over
HTTP, and the lag warning in its log.

The scenario's scopes start about ten periods behind, with a usage file
that makes every collection fail: each pass abandons every scope, which
stay behind (a warning each); the file is removed, the scopes catch up (an
info line each). The endpoint's counters are checked against the log and
the scope states, to the unit.
"""

import datetime
import os
import re
import shutil
import subprocess
import urllib.error

import pytest

from cloudkitty.tests.functional import harness

HOUR = harness.HOUR


def due(last, now):
    """Periods due at ``now`` after ``last``: hourly, two periods' wait."""
    count = 0
    while last + (count + 1) * HOUR + 2 * HOUR < now:
        count += 1
    return count


def test_metrics_and_lag_warnings_of_a_running_processor(tmp_path):
    scenario = harness.Watched(tmp_path, scopes=3, hours=8, seed=31)
    # A malformed record: every collection fails while the file is there.
    broken = scenario.usage / 'broken.jsonl'
    broken.write_text('{"metric": "cpu", "scope": "x", "qty": "NaN?"}\n')
    log = tmp_path / 'ck.log'
    process = scenario.start()
    try:
        assert scenario.wait_until(
            lambda: 'Serving metrics on http://127.0.0.1:'
                    f'{scenario.metrics_port}/metrics' in log.read_text(),
            30, process)
        assert scenario.wait_until(lambda: all(
            harness.lines(log, 'WARNING', f'Scope {scope} is ', 'periods behind')
            for scope in scenario.scopes), 30, process)

        # Behind: the lag, the last period, the errors; nothing rated.
        before = datetime.datetime.now(harness.UTC)
        content_type, text = scenario.scrape()
        after = datetime.datetime.now(harness.UTC)
        assert content_type == 'text/plain; version=0.0.4; charset=utf-8'
        assert_promtool_accepts(text)
        samples = scenario.samples()
        assert samples[('cloudkitty_scope_states_up', None)] == 1
        for scope in scenario.scopes:
            assert samples[(
                'cloudkitty_scope_last_processed_timestamp_seconds',
                scope)] == int(scenario.base.timestamp())
            lag = samples[('cloudkitty_scope_lag_periods', scope)]
            assert lag in (due(scenario.base, before),
                           due(scenario.base, after))
            assert lag > 3
            assert samples[('cloudkitty_scope_lag_seconds', scope)] == \
                lag * 3600
            assert samples[('cloudkitty_scope_periods_rated_total',
                            scope)] == 0
            assert samples[('cloudkitty_scope_collection_errors_total',
                            scope)] >= 1
            warning, *_ = harness.lines(log, 'WARNING', f'Scope {scope} is ')
            assert re.search(
                rf'Scope {scope} is (\d+) periods behind \(more than '
                r'lag_warning_periods = 3\): last processed period '
                + re.escape(scenario.base.isoformat()), warning)
        with pytest.raises(urllib.error.HTTPError) as missing:
            scenario.scrape('/other')
        assert missing.value.code == 404

        # The source is fixed: every scope catches up.
        broken.unlink()
        assert scenario.wait_until(scenario.caught_up, 60, process)

        def counted():
            # Counters are written at the end of each pass.
            states = scenario.states()
            samples = scenario.samples()
            return all(samples[('cloudkitty_scope_periods_rated_total', s)]
                       == (states[s] - scenario.base) // HOUR
                       for s in scenario.scopes) and samples
        final = scenario.wait_until(counted, 30, process) and counted()
        assert final
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    states = scenario.states()
    for scope in scenario.scopes:
        # Exactly the periods the scope rated, and each failed pass.
        rated = [p for s, p in harness.RATED.findall(log.read_text())
                 if s == scope]
        assert final[('cloudkitty_scope_periods_rated_total', scope)] == \
            len(rated) == (states[scope] - scenario.base) // HOUR
        failed = harness.lines(log, f'Scope {scope} abandoned', ' metric ')
        assert final[('cloudkitty_scope_collection_errors_total',
                      scope)] == len(failed) >= 1
        assert final[('cloudkitty_scope_rating_errors_total', scope)] == 0
        assert final[('cloudkitty_scope_periods_reprocessed_total',
                      scope)] == 0
        assert final[('cloudkitty_scope_lag_periods', scope)] in (0, 1)
        # One warning while behind (two if an hour began meanwhile), one
        # info line once caught up.
        assert 1 <= len(harness.lines(log, f'Scope {scope} is ',
                                      'periods behind')) <= 2
        recovered, = harness.lines(
            log, 'INFO', f'Scope {scope} is no longer behind')
        assert re.search(r'no longer behind: [01] periods due, last '
                         r'processed period ', recovered)
    scenario.assert_stored_exactly_once()
    assert 'Traceback' not in log.read_text()


def assert_promtool_accepts(text):
    """The format as Prometheus reads it: its own linter has nothing to
    say (promtool comes with the Debian package .ci/run installs)."""
    if shutil.which('promtool') is None:
        if os.environ.get('CI') == 'true':
            pytest.fail('promtool is missing under CI')
        return
    checked = subprocess.run(['promtool', 'check', 'metrics'], input=text,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_workers_and_the_endpoint_share_a_directory_removed_at_exit(
        tmp_path, monkeypatch):
    from cloudkitty.orchestrator import metrics
    from cloudkitty.orchestrator import processor
    added = []

    class Manager:
        def add(self, service, workers, args):
            added.append((service, workers, args[-1]))

        def run(self):
            assert os.path.isdir(added[-1][2])

    monkeypatch.setattr(processor.cotyledon, 'ServiceManager', Manager)
    processor.serve(harness.Watched(tmp_path, scopes=1, hours=1).conf(), plan=None)
    assert [(service, workers) for service, workers, _ in added] == [
        (processor.ProcessorService, 1), (processor.ReprocessingService, 1),
        (metrics.MetricsService, 1)]
    directory, = {directory for _, _, directory in added}
    assert directory is not None and not os.path.exists(directory)
