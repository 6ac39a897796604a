"""The rating pipeline pricing many frames at once (Pipeline.rate_many):
the same prices as frame by frame, the rules loaded once per start, and a
module's failure on one frame failing that frame alone."""

import datetime
import decimal

import pytest

from cloudkitty import dataframe
from cloudkitty import rating

D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
START = datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc)
STATES = {'bulk': {'enabled': True, 'priority': 2},
          'alone': {'enabled': True, 'priority': 1}}


def frame(start, qty):
    priced = dataframe.DataFrame(start, start + HOUR)
    priced.add_point(dataframe.DataPoint('u', qty, 0, {}, {}), 'cpu')
    return priced


def prices(frame_):
    return [point.price for _, point in frame_.iterpoints()]


class Module(rating.RatingProcessorBase):
    """price = price * 10 + a scope's step (1 unless ``steps`` says);
    raises for the scopes of ``failing``; notes its loads and calls."""

    def __init__(self, name, steps=None, failing=()):
        super().__init__()
        self.module_name = name
        self.default_enabled = True
        self.steps = steps or {}
        self.failing = set(failing)
        self.loads = []
        self.calls = []

    def reload_config(self, start=None):
        self.loads.append(start)

    def process(self, data):
        raise AssertionError('rate is called with the scope')

    def rate(self, frame_, scope_id):
        self.calls.append(('rate', scope_id))
        return self._priced(frame_, scope_id)

    def _priced(self, frame_, scope_id):
        if scope_id in self.failing:
            raise ValueError(f'no rule for {scope_id}')
        return frame_.with_prices({
            type_: [price * 10 + self.steps.get(scope_id, 1)
                    for price in prices_]
            for type_, _, prices_ in frame_.itercolumns()})


class BulkModule(Module):
    """Prices its frames in one call, which raises if one of them fails."""

    def rate_many(self, items):
        self.calls.append(('rate_many', [scope for _, scope in items]))
        if any(scope in self.failing for _, scope in items):
            raise ValueError('one frame failed')
        return [self._priced(frame_, scope) for frame_, scope in items]


ITEMS = [(frame(START, 1), 'a'), (frame(START, 2), 'b'),
         (frame(START + HOUR, 3), 'a'), (frame(START, 4), 'c')]


def test_frames_priced_together_are_priced_as_alone():
    bulk = BulkModule('bulk', steps={'b': 5})
    alone = Module('alone', steps={'c': 7})
    together = rating.Pipeline({'bulk': bulk, 'alone': alone}, STATES)
    priced = together.rate_many(ITEMS)
    # bulk first (priority 2): (0 * 10 + step) * 10 + step of alone.
    assert [prices(f) for f in priced] == [
        [D(11)], [D(51)], [D(11)], [D(17)]]
    one_by_one = rating.Pipeline({'bulk': BulkModule('bulk', {'b': 5}),
                                  'alone': Module('alone', {'c': 7})}, STATES)
    assert priced == [one_by_one.rate(f, scope) for f, scope in ITEMS]
    # One call per start, with its frames in order; rules loaded once per
    # start, in the order the starts come.
    assert bulk.calls == [('rate_many', ['a', 'b', 'c']),
                          ('rate_many', ['a'])]
    assert bulk.loads == alone.loads == [START, START + HOUR]


def test_a_failure_fails_its_frame_alone():
    bulk = BulkModule('bulk', failing={'b'})
    alone = Module('alone', failing={'c'})
    priced = rating.Pipeline({'bulk': bulk, 'alone': alone},
                             STATES).rate_many(ITEMS)
    assert [type(result) for result in priced] == [
        dataframe.DataFrame, ValueError, dataframe.DataFrame, ValueError]
    assert str(priced[1]) == 'no rule for b'
    assert str(priced[3]) == 'no rule for c'
    assert prices(priced[0]) == prices(priced[2]) == [D(11)]
    # The bulk call that failed was made again frame by frame; the later
    # module did not see the frame that failed.
    assert bulk.calls[:4] == [('rate_many', ['a', 'b', 'c']), ('rate', 'a'),
                              ('rate', 'b'), ('rate', 'c')]
    assert ('rate', 'b') not in alone.calls


def test_a_single_frame_is_not_priced_twice_and_raises():
    bulk = BulkModule('bulk', failing={'b'})
    pipeline = rating.Pipeline({'bulk': bulk}, STATES)
    with pytest.raises(ValueError, match='one frame failed'):
        pipeline.rate(frame(START, 1), 'b')
    assert bulk.calls == [('rate_many', ['b'])]


def test_rules_that_cannot_be_loaded_fail_the_call():
    class Down(Module):
        def reload_config(self, start=None):
            raise ConnectionError('rules database down')

    with pytest.raises(ConnectionError):
        rating.Pipeline({'alone': Down('alone')}, STATES).rate_many(ITEMS)
