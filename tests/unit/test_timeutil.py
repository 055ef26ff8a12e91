"""ISO moments stay fixed-width and read back, even before the year 1000 (schemathesis found
``since=0779-04-06T06:14:13.880Z`` answering 500)."""

from datetime import datetime, timezone

import pytest

from imageservice.core.timeutil import from_iso, to_iso


@pytest.mark.parametrize("year", [1, 779, 999, 1000, 2026, 9999])
def test_every_year_round_trips_at_a_fixed_width(year):
    moment = datetime(year, 4, 6, 6, 14, 13, 880000, tzinfo=timezone.utc)
    text = to_iso(moment)
    assert len(text) == len("2026-04-06T06:14:13.880Z"), text
    assert from_iso(text) == moment
