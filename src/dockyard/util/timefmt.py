"""Every time format the Engine API and its log files use, in one place.

One fraction-digit rule, Go's: ``RFC3339Nano`` (what encoding/json writes for a time.Time: Created,
StartedAt, json-file's ``time``, a path's mtime) trims trailing zeros and drops an all-zero fraction;
``RFC3339NanoFixed`` (docker's jsonmessage format: ``docker logs -t``, stats' ``read``) always writes
nine digits. Times are UTC and written with ``Z``.
"""

from __future__ import annotations

import calendar
import datetime
import re
import time

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as dockerd writes an unset time

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                "h": 3_600_000_000_000}


def go_duration_ns(value: str) -> int | None:
    """Go's time.ParseDuration (``10m``, ``1h30m``, ``-2s``, ``0``), or None when ``value`` is not one."""
    sign, body = (-1 if value[:1] == "-" else 1), (value[1:] if value[:1] in ("+", "-") else value)
    if body == "0":  # the one number Go takes without a unit
        return 0
    if not body:
        return None
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m:
            return None
        total += float(m.group(1)) * _DURATION_NS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def _seconds(secs: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


def rfc3339_nano_fixed(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return f"{_seconds(secs)}.{frac:09d}Z"


def rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return _seconds(secs) + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def rfc3339(ts: float) -> str:
    """Whole seconds (volumes' CreatedAt, a build's SOURCE_DATE_EPOCH time)."""
    return _seconds(int(ts)) + "Z"


def fixed_from_seconds(ts: float) -> str:
    """``RFC3339NanoFixed`` of a ``time.time()`` value, to the microsecond a float holds exactly."""
    return rfc3339_nano_fixed(round(ts * 1_000_000) * 1000)


def now_fixed() -> str:
    return rfc3339_nano_fixed(time.time_ns())


def parse_ns(stamp: bytes) -> int:
    """Nanoseconds since the epoch of ``2026-11-23T09:17:59.869660415+00:00`` (or ``Z``, or no fraction).

    Hand-parsed: json-file readers call it once per log line, where datetime's parser costs several
    times more and stops at microseconds.
    """
    date, _, rest = stamp.partition(b"T")
    year, month, day = int(date[0:4]), int(date[5:7]), int(date[8:10])
    hh, mm, ss = int(rest[0:2]), int(rest[3:5]), int(rest[6:8])
    frac = 0
    i = 8
    if rest[8:9] == b".":
        j = 9
        while j < len(rest) and 48 <= rest[j] <= 57:
            j += 1
        frac = int((rest[9:j] + b"000000000")[:9])
        i = j
    offset = 0
    tz = rest[i:]
    if tz and tz[:1] in (b"+", b"-"):
        sign = 1 if tz[:1] == b"+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    secs = calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)) - offset
    return secs * 1_000_000_000 + frac


def parse_seconds(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (fraction to the nanosecond, ``Z`` or an offset);
    0 for Go's zero time or an empty string."""
    if not value or value.startswith("0001-"):
        return 0.0
    main, _, rest = value.partition(".")
    frac = zone = ""
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, zone = rest[:i], rest[i:]
    else:
        for sep in ("Z", "z", "+", "-"):
            k = main.find(sep, 10)
            if k >= 0:
                main, zone = main[:k], main[k:]
                break
    if zone in ("Z", "z", ""):
        zone = "+00:00"
    # fromisoformat rather than strptime: a tenth of the cost, and `ps` parses one per container
    return datetime.datetime.fromisoformat(main + zone).timestamp() + (float("0." + frac) if frac else 0.0)


def go_time(stamp: bytes) -> bytes:
    """A shim's ``2026-11-23T09:17:59.869660410+00:00`` as Go's RFC3339Nano in UTC: ``…59.86966041Z``."""
    if stamp.endswith(b"+00:00") or stamp.endswith(b"Z"):
        base = stamp[:-6] if stamp.endswith(b"+00:00") else stamp[:-1]
        if b"." in base:
            base = base.rstrip(b"0").rstrip(b".")
        return base + b"Z"
    return rfc3339_nano(parse_ns(stamp)).encode()


# -- local time, as the docker CLI shows times ---------------------------------------------------------

def local_time(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).astimezone()


def go_time_string(ts: float) -> str:
    """Go's ``time.Time.String()`` for whole seconds in local time: ``2023-11-14 22:13:20 +0000 UTC``."""
    t = local_time(ts)
    return t.strftime("%Y-%m-%d %H:%M:%S %z ") + (t.tzname() or "")


def rfc3339_local(ts: float) -> str:
    """``time.RFC3339`` in local time: ``2023-11-14T22:13:20Z``, ``2023-11-14T23:13:20+01:00``."""
    t = local_time(ts)
    return _zone(t.strftime("%Y-%m-%dT%H:%M:%S"), t)


def rfc3339_nano_fixed_local(ns: int) -> str:
    """``RFC3339NanoFixed`` in local time."""
    t = local_time(ns // 1_000_000_000)
    return _zone(t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}", t)


def _zone(text: str, t: datetime.datetime) -> str:
    offset = t.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
