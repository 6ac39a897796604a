"""The noop rating module: always enabled, prices nothing."""

from cloudkitty import rating


class Noop(rating.RatingProcessorBase):
    """Leaves every point with the price it has (0 unless priced before).

    Points always carry a Decimal price (0 by default), so there is nothing
    to fill in; the module exists so that a deployment without rules still
    stores its usage.
    """

    description = 'Dummy test module.'
    hot_config = False
    default_enabled = True
    default_priority = 1

    def load_state(self, state):
        """noop is always enabled; only its stored priority applies."""
        super().load_state(state)
        self.enabled = True

    def process(self, data):
        return data
