"""A cron expression's form as a pattern for the OpenAPI document (ECMA-262, which Python's
``re`` reads the same): five fields as crontab(5) writes them, each value within its field's
range, or one of the shorthands. What no pattern can say (a range runs low to high; the days
fall in at least one of the months) is ``domain.schedules.clock.cron_problem``'s to judge."""

from __future__ import annotations

_STEP = "/0*[1-9][0-9]*"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
SHORTHANDS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")


def _any_case(word: str) -> str:
    return "".join(f"[{letter.upper()}{letter}]" for letter in word)


def _names(words: tuple[str, ...]) -> str:
    return "|".join(_any_case(word) for word in words)


def _field(value: str, *specials: str) -> str:
    """A comma-separated list of `*`, values and ranges, each with an optional step."""
    term = f"(?:\\*|(?:{value})(?:-(?:{value}))?)(?:{_STEP})?"
    item = "|".join((term, *specials))
    return f"(?:{item})(?:,(?:{item}))*"


_DOW = f"0*[0-7]|{_names(_DAYS)}"
FIELDS = (
    _field("0*[1-5]?[0-9]"),  # minute
    _field("0*(?:1?[0-9]|2[0-3])"),  # hour
    _field("0*(?:[12]?[1-9]|[123]0|31)", f"[Ll][Ww]?(?:{_STEP})?"),  # day of the month
    _field(f"0*(?:1[0-2]|[1-9])|{_names(_MONTHS)}"),  # month
    _field(_DOW, "0*[0-7][Ll]", f"(?:{_DOW})#0*[1-5]"),  # day of the week
)
_BLANKS = "[ \\t]+"
CRON_PATTERN = f"^(?:{_BLANKS.join(f'(?:{f})' for f in FIELDS)}|@(?:{'|'.join(SHORTHANDS)}))$"
