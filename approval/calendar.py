"""Working days: due times counted in working days from a calendar with holidays (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class WorkCalendar:
    """Weekends and listed holidays are off; listed make-up days (调休) are working days."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, holidays: str, makeup_days: str = "") -> WorkCalendar:
        """Comma-separated ISO dates, as the settings carry them."""
        return cls(_dates(holidays), _dates(makeup_days))

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same time of day `days` working days after `start` (end of day when it lands)."""
        at = start
        remaining = days
        while remaining > 0:
            at += timedelta(days=1)
            if self.is_working_day(at.date()):
                remaining -= 1
        return at


def _dates(raw: str) -> frozenset[date]:
    return frozenset(date.fromisoformat(p.strip()) for p in raw.split(",") if p.strip())
