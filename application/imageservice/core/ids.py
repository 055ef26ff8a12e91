"""Time-sortable unique ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32)."""

from __future__ import annotations

import os
import re
import threading
import time

from .timeutil import from_iso

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = [0, 0]  # last millisecond, last random part: keeps ids monotonic within one process

# os.urandom is a system call made with the GIL released; on a busy web worker each release
# hands the GIL to another thread and back. Random bytes are drawn from the kernel in blocks,
# so an id or a request id costs no system call (the same quality: each byte is used once).
RANDOM_BLOCK_BYTES = 4096
_random = [b"", 0]  # the current block, and how much of it is used
_fork_hook: list = []  # holds the fork hook once registered (it cannot be taken back)

ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the operating system's CSPRNG, never handed out twice."""
    with _lock:
        return _take_random(count)


def _take_random(count: int) -> bytes:
    """random_bytes' work; the caller holds ``_lock``."""
    block, used = _random
    if used + count > len(block):
        if not block and not _fork_hook:  # the first block: from now on a fork must forget it
            _fork_hook.append(_forget_after_fork)
            os.register_at_fork(after_in_child=_forget_after_fork)
        block, used = os.urandom(max(RANDOM_BLOCK_BYTES, count)), 0
    _random[0], _random[1] = block, used + count
    return block[used:used + count]


def _forget_after_fork() -> None:
    """A forked child must not hand out its parent's unused bytes, nor continue its sequence
    (nor inherit the lock held by a thread that did not survive the fork)."""
    global _lock
    _lock = threading.Lock()
    _random[0], _random[1] = b"", 0
    _last[0], _last[1] = 0, 0


def new_id(now_ms: int | None = None) -> str:
    """A new 26-character id; ids made later sort after ids made earlier (same process: strictly).

    With ``now_ms`` the id is made for that moment, outside the monotonic sequence.
    """
    if now_ms is not None:
        return _encode(now_ms, 10) + _encode(int.from_bytes(random_bytes(10), "big"), 16)
    ms = int(time.time() * 1000)
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            rand = _last[1] + 1
        else:
            rand = int.from_bytes(_take_random(10), "big")
        rand &= (1 << 80) - 1
        _last[0], _last[1] = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def id_floor(ms: int) -> str:
    """The smallest id made at or after ``ms`` milliseconds: for time-range key conditions."""
    return _encode(ms, 10) + "0" * 16


def id_ceiling(ms: int) -> str:
    """The largest id made at or before ``ms`` milliseconds."""
    return _encode(ms, 10) + "Z" * 16


# Ids are made in the same instant as created_at; a range on ids is widened by this much so a
# millisecond between the two can never hide a record (an exact filter on created_at follows).
ID_RANGE_SLACK_MS = 60_000


def id_range(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """The id bounds covering records created in [since, until] (ISO 8601, either may be None):
    a time filter becomes a range on the time-sortable id, which both catalogs index."""
    low = id_floor(max(0, _ms(since) - ID_RANGE_SLACK_MS)) if since else None
    high = id_ceiling(_ms(until) + ID_RANGE_SLACK_MS) if until else None
    return low, high


def _ms(moment: str) -> int:
    return int(from_iso(moment).timestamp() * 1000)


def id_before(value: str) -> str | None:
    """The id just before ``value`` in sort order (None before the smallest): "after this
    cursor, newest first" as an inclusive upper bound, which every key range can express."""
    number = 0
    for ch in value:
        number = number * 32 + _ALPHABET.index(ch)
    return _encode(number - 1, len(value)) if number else None


def id_timestamp_ms(value: str) -> int:
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + _ALPHABET.index(ch)
    return ms


def is_id(value: str) -> bool:
    return bool(ULID_RE.match(value or ""))
