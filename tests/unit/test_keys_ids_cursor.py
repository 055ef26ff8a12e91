import os
import re

import pytest

from imageservice.core import keys
from imageservice.core.cursor import decode_cursor, encode_cursor
from imageservice.core.errors import BadRequest
from imageservice.core.filenames import content_disposition, sanitize_filename, with_extension
from imageservice.core import correlation
from imageservice.core.ids import RANDOM_BLOCK_BYTES, random_bytes, id_before, id_ceiling, id_floor, id_timestamp_ms, is_id, new_id


def test_ids_are_unique_sortable_and_carry_their_time():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert ids == sorted(ids)
    assert all(is_id(i) for i in ids)
    assert id_floor(1_700_000_000_000) <= new_id(1_700_000_000_000 + 1) <= id_ceiling(1_700_000_000_001)
    assert id_timestamp_ms(new_id(1_234_567_890_123)) == 1_234_567_890_123


def test_random_bytes_are_never_handed_out_twice_across_blocks():
    pieces = [random_bytes(10) for _ in range(3 * RANDOM_BLOCK_BYTES // 10)]  # spans several blocks
    assert {len(p) for p in pieces} == {10}
    assert len(set(pieces)) == len(pieces)
    assert len(random_bytes(RANDOM_BLOCK_BYTES + 1)) == RANDOM_BLOCK_BYTES + 1
    assert re.fullmatch(r"[0-9a-f]{32}", correlation.new_request_id())
    assert correlation.new_request_id() != correlation.new_request_id()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_random_bytes_and_ids():
    random_bytes(16)  # the parent holds a partly used block
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, random_bytes(16) + new_id().encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64)
    os.close(read_end)
    os.close(write_end)
    assert child[:16] != random_bytes(16)
    assert child[16:].decode() != new_id()


def test_id_before_is_the_next_smaller_id_of_the_same_length():
    assert id_before("01ARZ3NDEKTSV4RRFFQ69G5FAW") == "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert id_before("01ARZ3NDEKTSV4RRFFQ69G5FA0") == "01ARZ3NDEKTSV4RRFFQ69G5F9Z"
    assert id_before("1" + "0" * 25) == "0" + "Z" * 25
    assert id_before("0" * 26) is None
    some = sorted(new_id() for _ in range(50))
    assert all(some[i - 1] <= id_before(some[i]) < some[i] for i in range(1, 50))


def test_key_layout_and_parsing():
    assert keys.original_key("alice", "01ABC", False) == "originals/alice/01ABC"
    assert keys.original_key("anon-x", "01ABC", True) == "sessions/originals/anon-x/01ABC"
    assert keys.derivative_key("alice", "I", "thumb", False) == "derivatives/alice/I/thumb.webp"
    assert keys.image_prefixes("anon-x", "I", True) == [
        "sessions/derivatives/anon-x/I/", "sessions/conversions/anon-x/I/"]
    image_id = new_id()
    parsed = keys.parse_original_key(f"originals/alice/{image_id}")
    assert (parsed.user_id, parsed.image_id, parsed.ephemeral) == ("alice", image_id, False)
    dropped = keys.parse_original_key("originals/alice/My Photo.jpg")
    assert dropped.image_id is None and dropped.name == "My Photo.jpg"


@pytest.mark.parametrize("key", [
    "derivatives/alice/X/thumb.webp", "originals/alice", "originals/../x/y", "originals/alice/a/b",
    "sessions/originals/alice/x",  # a token user's id under the sessions prefix
    "originals/anon-x/y",  # a session user's id outside it
    "other/alice/x",
])
def test_non_original_keys_are_not_parsed(key):
    assert keys.parse_original_key(key) is None


def test_cursors_round_trip_and_refuse_junk():
    image_id = new_id()
    assert decode_cursor(encode_cursor("alice", image_id), "alice") == image_id
    assert decode_cursor(None, "alice") is None
    for bad in ("!!!not-a-cursor", encode_cursor("bob", image_id), encode_cursor("alice", "not-an-id")):
        with pytest.raises(BadRequest) as caught:
            decode_cursor(bad, "alice")
        assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize("raw, clean", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
    ("evil\r\nname\".jpg", "evilname'.jpg"),
    ("", "image"),
    ("...", "image"),
])
def test_filenames_are_sanitised(raw, clean):
    assert sanitize_filename(raw) == clean


def test_content_disposition_is_safe_for_any_name():
    value = content_disposition('résumé "x".jpg', attachment=True)
    assert value.startswith('attachment; filename="r_sum_')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in value
    assert "\n" not in value
    assert with_extension("holiday.photo.JPG", "png", "-300x200") == "holiday.photo-300x200.png"
