"""Break the product on purpose, one mutation at a time, and check that the
tests meant to catch each mutation fail.

Usage, from the top of the checkout, with the test virtualenv::

    .venv/bin/python tools/mutants.py            # every mutation
    .venv/bin/python tools/mutants.py --list     # their names
    .venv/bin/python tools/mutants.py state-before-store rounding-mode

Each mutation is a textual change of one product file (its ``old`` text
must occur there exactly once). The checkout is copied to a temporary
directory; for each mutation the copy's file is mutated, the mutation's
tests run there with pytest (the copy first on ``sys.path``, so the
processor subprocesses the tests start run the mutated code too), and the
file is restored. The checkout itself is never changed, so an interrupted
run leaves nothing behind.

A mutation is caught when pytest reports failed tests (exit code 1); an
error of collection, an interruption or no test run (exit codes 2 to 5)
is not a catch. Before the mutations, the tests of all of them run once
unmutated and must pass, or nothing is tried (``--no-baseline`` skips
that). Hypothesis's example database is cleared before every run, so that
no mutation is caught by an example remembered from another, and failing
examples are not shrunk (the ``mutants`` profile of the tests' conftest).

Prints one line per mutation, then a table mutation -> caught by; exits 1
if any mutation survived.
"""

import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutation:
    """Replace ``old`` by ``new`` in ``path``; ``tests`` must then fail."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple

    def apply(self, text):
        """``text`` mutated; ``ValueError`` unless ``old`` occurs once."""
        count = text.count(self.old)
        if count != 1:
            raise ValueError(f'{self.name}: the text to mutate occurs '
                             f'{count} times in {self.path}, not once')
        return text.replace(self.old, self.new)


WORKER = 'cloudkitty/orchestrator/worker.py'
PERIODS = 'cloudkitty/orchestrator/periods.py'
HASH_RULES = 'cloudkitty/rating/hash/rules.py'
PROCESSOR_TESTS = 'cloudkitty/tests/functional/test_processor.py'
CRASH_TEST = ('cloudkitty/tests/functional/test_processor_crash.py::'
              'test_sigkill_at_random_instants_while_rating')
WORKER_TESTS = 'cloudkitty/tests/unit/test_orchestrator_worker.py'
CONTRACT_TESTS = 'cloudkitty/tests/functional/storage/test_contract.py'
API_TESTS = 'cloudkitty/tests/functional/api/'
HASH_PROPERTY = 'cloudkitty/tests/unit/rating/test_hashmap_property.py'
HASH_API_RATING = 'cloudkitty/tests/functional/api/test_hashmap_api_rating.py'
HASH_TESTS = ('cloudkitty/tests/unit/rating/test_hashmap_property.py',
              'cloudkitty/tests/unit/rating/test_hashmap_rules.py')

MUTATIONS = (
    Mutation(
        'drop-a-period',
        'the period after 03:00 of every day is never rated',
        PERIODS,
        'candidate = timeutils.month_start(now) if last is None else '
        'last + step\n',
        'candidate = timeutils.month_start(now) if last is None else (\n'
        '        last + step + step * (last.hour == 3))\n',
        (WORKER_TESTS,
         f'{PROCESSOR_TESTS}::test_processor_stores_every_period_exactly_'
         'once')),
    Mutation(
        'store-a-period-twice',
        'the processor pushes each period again after replacing it',
        WORKER,
        '        self._storage.replace(frame, scope_id)\n',
        '        self._storage.replace(frame, scope_id)\n'
        '        self._storage.push([frame], scope_id)\n',
        (WORKER_TESTS,
         f'{PROCESSOR_TESTS}::test_processor_stores_every_period_exactly_'
         'once')),
    Mutation(
        'state-before-store',
        "a period is recorded in the scope's state before it is stored "
        "(the processor's grouped store)",
        'cloudkitty/orchestrator/batch.py',
        '        if items:\n'
        '            try:\n'
        '                self._storage.replace_many(items)\n',
        '        for scope in pending.values():\n'
        '            scope.periods[-1].record()\n'
        '        if items:\n'
        '            try:\n'
        '                self._storage.replace_many(items)\n',
        ('cloudkitty/tests/functional/storage/test_processor_groups.py::'
         'test_a_crash_then_a_pass_stores_each_period_exactly_once',
         CRASH_TEST)),
    Mutation(
        'group-tail-not-stored',
        "the periods pending when a pass ends are neither stored nor "
        "recorded",
        'cloudkitty/orchestrator/batch.py',
        '        if exc is None:\n'
        '            self.flush()\n'
        '            return False\n',
        '        if exc is None:\n'
        '            return False\n',
        ('cloudkitty/tests/functional/storage/test_processor_groups.py::'
         'test_a_pass_stores_and_records_every_period',
         'cloudkitty/tests/unit/test_orchestrator_batch.py::'
         'test_the_last_partial_group_is_stored')),
    Mutation(
        'push-keeps-day-rolled',
        "a push on PostgreSQL adds to a day's daily sums but leaves the day "
        "marked rolled: its points are missing from totals by label",
        'cloudkitty/storage/v2/sqlalchemy/dialects.py',
        "    ('day', 'CAST(period_begin AS date)'), more=', rolled = "
        "false')\n",
        "    ('day', 'CAST(period_begin AS date)'))\n",
        ('cloudkitty/tests/functional/storage/test_label_rollup.py::'
         'test_totals_by_labels_match_the_points_through_every_change',)),
    Mutation(
        'push-skips-month',
        "a push on PostgreSQL adds to the daily sums but not to the monthly "
        "ones: a whole month's summary misses it",
        'cloudkitty/storage/v2/sqlalchemy/dialects.py',
        "            f'monthly AS ({_ADD_TO_MONTHLY}) {_ADD_TO_DAILY}',\n",
        "            f'monthly AS (SELECT 1) {_ADD_TO_DAILY}',\n",
        ('cloudkitty/tests/functional/storage/test_monthly_totals.py::'
         'test_totals_over_months_days_and_hours_follow_every_write',)),
    Mutation(
        'delete-keeps-month',
        "a replace or delete subtracts from the daily sums but not from the "
        "monthly ones",
        'cloudkitty/storage/v2/sqlalchemy/writes.py',
        "        months = _by_month(rows)\n",
        "        months = _by_month(rows) if sign > 0 else []\n",
        ('cloudkitty/tests/functional/storage/test_monthly_totals.py::'
         'test_totals_over_months_days_and_hours_follow_every_write',)),
    Mutation(
        'retention-keeps-month',
        "dropping the partitions of the days before the retention leaves "
        "the monthly sums of the month they cut untouched",
        'cloudkitty/storage/v2/sqlalchemy/writes.py',
        "        if before == month:\n            return\n",
        "        return\n",
        ('cloudkitty/tests/functional/storage/test_partitions.py::'
         'test_retention_by_week_sums_the_month_it_cuts_again',)),
    Mutation(
        'adopt-by-service-name',
        "a new hashmap rule set adopts an earlier set's compiled service by "
        "its name, not by its rules: a changed service keeps its old prices",
        'cloudkitty/rating/hash/rules.py',
        "    return (tuple(sorted(map(_sort_key, mappings))),\n"
        "            tuple(sorted(map(_sort_key, thresholds))))\n",
        "    return tuple(sorted({rule.service for rule in (*mappings, "
        "*thresholds)}))\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_a_new_set_adopts_the_services_whose_rules_are_the_same',
         'cloudkitty/tests/functional/rating/test_hashmap_loader.py::'
         'test_a_change_to_one_service_keeps_the_plans_of_the_others')),
    Mutation(
        'running-difference-sums',
        "the hashmap sums an interval's slope from the previous interval's "
        "plus the change, keeping the exponent of a tier no longer in force",
        'cloudkitty/rating/hash/rules.py',
        "            elif new_m:\n"
        "                m = sum(in_force, static)\n",
        "            elif new_m:\n"
        "                m = m + sum(in_force, static) - m\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_prices_have_the_digits_of_the_tiers_in_force',
         'cloudkitty/tests/unit/rating/test_hashmap_property.py::'
         'test_engine_equals_reference')),
    Mutation(
        'slope-sum-from-plain-zero',
        "the slopes of a plan's groups are summed from a plain 0, whose "
        "exponent caps theirs: 4.20E+3 * 0.1 priced 420.0, not 420",
        'cloudkitty/rating/hash/rules.py',
        "        static = _NEUTRAL_ZERO\n",
        "        static = _ZERO\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_a_slope_with_a_positive_exponent_keeps_it',
         f'{HASH_PROPERTY}::test_digits_with_costs_of_every_exponent')),
    Mutation(
        'unmatched-group-adds-nothing',
        "a group with a rule of the service where nothing matched adds "
        "nothing, where rating.md adds its 1 * 0 * qty, whose exponent can "
        "show: 1E+1 * 0.1 priced 1, not 1.0",
        'cloudkitty/rating/hash/rules.py',
        "        for group, (flat, rate) in groups.items():\n",
        "        for group, (flat, rate) in ((g, fold) for g, fold in "
        "groups.items()\n"
        "                                    if fold is not _NEUTRAL "
        "or g in field_best):\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_a_group_where_nothing_matched_adds_its_zero',
         f'{HASH_PROPERTY}::test_digits_with_costs_of_every_exponent')),
    Mutation(
        'constant-not-from-zero',
        "a piece whose constant changes adds C itself, not C + 0, to a "
        "column of plain zeros: C's positive exponent shows in the price",
        'cloudkitty/rating/hash/rules.py',
        "                piece = _constant_piece(m, c)\n",
        "                piece = (m, c, c)\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_a_constant_with_a_positive_exponent_is_added_to_a_zero',)),
    Mutation(
        'any-shared-zero-is-plain',
        "a column whose prices are one zero object is priced as if that zero "
        "were Decimal('0'), whatever its exponent or sign",
        'cloudkitty/rating/hash/rules.py',
        "    return (first.as_tuple() == _PLAIN_ZERO\n",
        "    return (not first\n",
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_prices_have_the_digits_of_the_tiers_in_force',)),
    Mutation(
        'replace-without-delete',
        "the storage's replace pushes without deleting the period first",
        'cloudkitty/storage/v2/sqlalchemy/backend.py',
        '                self._writer.delete_batches(conn, v2.Query(\n'
        '                    begin=begin, end=end, scopes=tuple(scopes)))\n',
        '                pass\n',
        (f'{CONTRACT_TESTS}::test_replace_is_idempotent',
         f'{CONTRACT_TESTS}::test_replace_many_replaces_each_scope_period_'
         'all_or_none')),
    Mutation(
        'flat-costs-summed',
        'the flat costs of one group add up instead of the largest '
        'applying',
        HASH_RULES,
        '    return (other[0] if other[0] > fold[0] else fold[0], '
        'fold[1] * other[1])\n',
        '    return (other[0] + fold[0], fold[1] * other[1])\n',
        HASH_TESTS),
    Mutation(
        'threshold-tie-break-flipped-fields',
        'on equal levels the last field threshold by name wins, not the '
        'first',
        HASH_RULES,
        'entry[0] > field_best[group][0]',
        'entry[0] >= field_best[group][0]',
        (f'{HASH_PROPERTY}::test_thresholds_of_equal_level',
         f'{HASH_PROPERTY}::test_worked_cases')),
    Mutation(
        'threshold-tie-break-flipped-service',
        'on equal levels a field threshold wins over the service threshold',
        HASH_RULES,
        '                if best is not None and level < best[0]:\n',
        '                if best is not None and level <= best[0]:\n',
        (f'{HASH_PROPERTY}::test_thresholds_of_equal_level',
         f'{HASH_PROPERTY}::test_worked_cases')),
    Mutation(
        'tenant-mapping-override-ignores-group',
        "a tenant's mapping replaces the global ones of every group",
        HASH_RULES,
        "        return ('mapping', self.service, self.field, self.value, "
        "self.group)\n",
        "        return ('mapping', self.service, self.field, self.value)\n",
        (f'{HASH_PROPERTY}::test_tenant_rules_override_within_their_group',
         f'{HASH_PROPERTY}::test_worked_cases',
         f'{HASH_API_RATING}::test_a_tenant_rule_of_another_group_adds_to_'
         'the_global_one')),
    Mutation(
        'tenant-threshold-override-ignores-group',
        "a tenant's threshold replaces the global ones of every group",
        HASH_RULES,
        "        return ('threshold', self.service, self.field, self.level,\n"
        "                self.group)\n",
        "        return ('threshold', self.service, self.field, "
        "self.level)\n",
        (f'{HASH_PROPERTY}::test_tenant_rules_override_within_their_group',
         f'{HASH_PROPERTY}::test_worked_cases',
         f'{HASH_API_RATING}::test_a_tenant_rule_of_another_group_adds_to_'
         'the_global_one')),
    Mutation(
        'rounding-half-even',
        'prices past 28 decimals are stored rounded half-even, not half-up',
        'cloudkitty/storage/v2/sqlalchemy/writes.py',
        '    return value.quantize(_QUANTUM, decimal.ROUND_HALF_UP,\n',
        '    return value.quantize(_QUANTUM, decimal.ROUND_HALF_EVEN,\n',
        (f'{HASH_API_RATING}::test_prices_past_28_decimals_are_stored_'
         'rounded_half_up',)),
    Mutation(
        'rounding-half-even-sqlite-column',
        "SQLite's price column rounds past 28 decimals half-even",
        'cloudkitty/db/types.py',
        '            value = value.quantize(self._quantum, '
        'decimal.ROUND_HALF_UP,\n',
        '            value = value.quantize(self._quantum, '
        'decimal.ROUND_HALF_EVEN,\n',
        ('cloudkitty/tests/unit/test_storage_sqlalchemy.py::test_sqlite_'
         'decimal_rounds_half_up_at_28_digits',)),
    Mutation(
        'rules-in-force-by-microseconds',
        'a rule created within the second of a quote is not in force for it',
        'cloudkitty/rating/common.py',
        '        second = to_db(at).replace(microsecond=0)\n',
        '        second = to_db(at) - datetime.timedelta(seconds=1)\n',
        ('cloudkitty/tests/functional/rating/test_hashmap_validity_'
         'property.py',
         'cloudkitty/tests/functional/api/test_hashmap_api_quote.py')),
    Mutation(
        'reader-filter-dropped-v1-report',
        "v1 reports: a reader's queries are not restricted to their project",
        'cloudkitty/api/v1/report.py',
        '    return utils.own_scope_filters({scope_key: tenant_id} if '
        'tenant_id\n                                   else None)\n',
        '    return {scope_key: tenant_id} if tenant_id else {}\n',
        (f'{API_TESTS}test_v1_report.py',)),
    Mutation(
        'reader-filter-dropped-v1-storage',
        "v1 dataframes: a reader's queries are not restricted to their "
        'project',
        'cloudkitty/api/v1/storage.py',
        '        filters = utils.own_scope_filters(\n'
        '            {scope_key: tenant_id} if tenant_id else None)\n',
        '        filters = {scope_key: tenant_id} if tenant_id else {}\n',
        (f'{API_TESTS}test_v1_storage.py',)),
    Mutation(
        'reader-filter-dropped-v2-summary',
        "v2 summary: a reader's queries are not restricted to their project",
        'cloudkitty/api/v2/summary.py',
        '    filters = utils.own_scope_filters(filters)\n',
        '    filters = dict(filters or {})\n',
        (f'{API_TESTS}test_v2_summary.py',)),
    Mutation(
        'reader-filter-dropped-v2-dataframes',
        "v2 dataframes: a reader's queries are not restricted to their "
        'project',
        'cloudkitty/api/v2/dataframes.py',
        '    filters = utils.own_scope_filters(filters)\n',
        '    filters = dict(filters or {})\n',
        (f'{API_TESTS}test_v2_dataframes.py',)),
    Mutation(
        'bulk-failure-fails-all',
        "a rating module's bulk call that fails fails every frame of the "
        "call, not only those it fails on alone",
        'cloudkitty/rating/__init__.py',
        '                priced = _each_alone(module, todo)\n',
        '                priced = [exc] * len(todo)\n',
        ('cloudkitty/tests/unit/rating/test_pipeline.py::'
         'test_a_failure_fails_its_frame_alone',)),
    Mutation(
        'round-rated-frame-by-frame',
        'the store group rates each pending period in a call of its own',
        'cloudkitty/orchestrator/batch.py',
        '                results = pipeline.rate_many(\n'
        '                    [(period.frame, scope_id) for scope_id, period '
        'in batch])\n',
        '                results = [pipeline.rate_many([(period.frame, '
        'scope_id)])[0]\n'
        '                           for scope_id, period in batch]\n',
        ('cloudkitty/tests/unit/test_orchestrator_batch.py::'
         'test_the_periods_of_a_flush_are_rated_together',)),
    Mutation(
        'round-prices-misaligned',
        "the hashmap hands each frame of a round the first prices of the "
        "service's column instead of its own",
        'cloudkitty/rating/hash/rules.py',
        '                                         else priced[start:end])\n',
        '                                         else priced[:end - start])'
        '\n',
        ('cloudkitty/tests/unit/rating/test_hashmap_property.py::'
         'test_frames_priced_together_equal_frames_priced_alone',)),
    Mutation(
        'zero-constant-is-none',
        "the hashmap takes a flat service threshold of 0.00 in force for no "
        "constant, dropping its digits",
        'cloudkitty/rating/hash/rules.py',
        '    return (m, c, c + _ZERO)\n',
        '    c = c or _NEUTRAL_ZERO\n'
        '    return (m, c, c + _ZERO)\n',
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_a_zero_constant_in_force_gives_its_digits',)),
    Mutation(
        'rate-cli-leaves-loggers-quieted',
        "cloudkitty-rate leaves the orchestrator's logger at WARNING in a "
        "process that goes on: a test run after it loses its INFO lines",
        'cloudkitty/cli/rate.py',
        "            logger.setLevel(old)\n",
        "            pass\n",
        ('cloudkitty/tests/functional/test_rate_cli.py::'
         'test_the_loggers_it_quiets_get_their_levels_back',)),
    Mutation(
        'bench-reading-in-pricing',
        "the hashmap benchmark's pricing figures count the time it takes to "
        "read and sum every price",
        'benchmarks/hashmap_bench.py',
        "('cpu_points_per_second', cpu - tally.cpu),\n",
        "('cpu_points_per_second', cpu),\n",
        ('cloudkitty/tests/unit/test_hashmap_bench.py::'
         'test_the_pricing_figures_leave_the_reading_out',)),
    Mutation(
        'unpriced-never-looked-for',
        "the hashmap never notes that a plan adds nothing, so the points "
        "such plans price get a new price instead of keeping theirs",
        'cloudkitty/rating/hash/rules.py',
        '                self._holds_unpriced = True\n',
        '                pass\n',
        ('cloudkitty/tests/unit/rating/test_hashmap_rules.py::'
         'test_points_priced_nothing_are_kept_as_they_are',)),
)


def _copy_checkout(destination):
    """Copy the files git knows of (committed or not, ignored ones left
    out) to ``destination``."""
    listed = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        cwd=TOP, check=True, capture_output=True).stdout.decode()
    for name in filter(None, listed.split('\0')):
        source = TOP / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _pytest(copy, tests, workers):
    """Run ``tests`` in ``copy``: ``(exit code, failed test ids)``."""
    shutil.rmtree(copy / '.hypothesis', ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE='1')
    argv = [sys.executable, '-m', 'pytest', '-q', '-rf', '-p',
            'no:cacheprovider', '--hypothesis-profile', 'mutants', *tests]
    if workers > 1:
        argv[3:3] = ['-n', str(workers)]
    process = subprocess.run(argv, cwd=copy, env=env, capture_output=True,
                             text=True, check=False)
    failed = re.findall(r'^FAILED (\S+)', process.stdout, re.MULTILINE)
    return process.returncode, failed, process.stdout + process.stderr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('names', nargs='*', help='mutations to try '
                        '(default: all)')
    parser.add_argument('--list', action='store_true',
                        help='list the mutations and exit')
    parser.add_argument('--no-baseline', action='store_true',
                        help='do not run the tests unmutated first')
    parser.add_argument('-n', '--workers', type=int, default=2,
                        help='pytest-xdist workers per run (default 2)')
    args = parser.parse_args(argv)
    known = {mutation.name: mutation for mutation in MUTATIONS}
    if args.list:
        for mutation in MUTATIONS:
            print(f'{mutation.name}: {mutation.what}')
        return 0
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f'unknown mutation(s) {", ".join(unknown)}; '
                     f'known: {", ".join(known)}')
    chosen = [known[name] for name in args.names] or list(MUTATIONS)
    with tempfile.TemporaryDirectory(prefix='ck-mutants-') as tmp:
        copy = pathlib.Path(tmp)
        _copy_checkout(copy)
        originals = {m.path: (copy / m.path).read_text() for m in chosen}
        # Fail before running anything if a mutation no longer applies.
        for mutation in chosen:
            mutation.apply(originals[mutation.path])
        if not args.no_baseline:
            tests = sorted({test for m in chosen for test in m.tests})
            code, failed, output = _pytest(copy, tests, args.workers)
            if code != 0:
                print(output[-3000:])
                print(f'the tests fail unmutated (exit {code}): '
                      f'{", ".join(failed) or "see above"}')
                return 2
            print(f'baseline: {len(tests)} test targets pass unmutated')
        rows = []
        for mutation in chosen:
            path = copy / mutation.path
            path.write_text(mutation.apply(originals[mutation.path]))
            started = time.monotonic()
            try:
                code, failed, output = _pytest(copy, mutation.tests,
                                               args.workers)
            finally:
                path.write_text(originals[mutation.path])
            seconds = time.monotonic() - started
            caught = code == 1 and bool(failed)
            if not caught and code != 0:
                print(output[-2000:])
            verdict = (', '.join(failed) if caught else
                       f'NOT CAUGHT (pytest exit {code})')
            print(f'{mutation.name}: {verdict} ({seconds:.0f} s)',
                  flush=True)
            rows.append((mutation.name, caught, failed, seconds))
    print()
    print('| mutation | caught by | tests failed | s |')
    print('|---|---|---|---|')
    for name, caught, failed, seconds in rows:
        by = ', '.join(test.split('::')[-1] for test in failed[:3])
        if len(failed) > 3:
            by += f' (+{len(failed) - 3})'
        print(f'| {name} | {by if caught else "**not caught**"} | '
              f'{len(failed)} | {seconds:.0f} |')
    return 0 if all(caught for _, caught, _, _ in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
