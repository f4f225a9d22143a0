from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeservice import FakeClock, FakeService  # noqa: E402

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def service(clock: FakeClock) -> Iterator[FakeService]:
    with FakeService(clock, api_key="lk_acme_01M84WYQMX68FK2S68RCXKSRF1_" + "ab" * 32) as s:
        yield s
