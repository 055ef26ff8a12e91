"""The pages' pure parts: template filters, server constants, asset versions."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from imageservice.core.conversions import (
    CONVERT_FORMATS, FITS, OPACITY_RANGE, QUALITY_RANGE, WATERMARK_POSITIONS, WATERMARK_TEXT_MAX,
)
from imageservice.core.errors import REJECTION_CODES
from imageservice.core.records import STATUSES
from imageservice.core.text import normalise_tag
from imageservice.web.pages import assets, constants, filters


@pytest.mark.parametrize("value, words", [
    (0, "0 B"), (512, "512 B"), (1536, "1.5 KB"), (50 * 1024 * 1024, "50.0 MB"), (2 * 1024 ** 3, "2.0 GB"),
    (None, "—"), (True, "—"),
])
def test_filesize(value, words):
    assert filters.filesize(value) == words


def test_sentence_makes_messages_read_as_sentences():
    assert filters.sentence("the file is markup (HTML/XML), not an image") == "The file is markup (HTML/XML), not an image."
    assert filters.sentence("Done!") == "Done!"
    assert filters.sentence("") == ""


def test_number_and_coordinate():
    assert filters.number(1234567) == "1,234,567"
    assert filters.coordinate(-33.8688, "N", "S") == "33.86880° S"
    assert filters.coordinate("junk", "E", "W") == "—"


def test_exif_rows_accept_numbers_fractions_and_pairs():
    rows = dict(filters.exif_rows({
        "Make": "Canon", "Model": "Canon EOS R5", "ExposureTime": "1/125", "FNumber": [56, 10],
        "ISOSpeedRatings": [400], "FocalLength": 35.0, "DateTimeOriginal": "2023:01:02 03:04:05",
    }))
    assert rows == {"Camera": "Canon EOS R5", "Exposure": "1/125 s", "Aperture": "f/5.6", "ISO": "400",
                    "Focal length": "35 mm", "Taken at": "2023-01-02 03:04:05"}
    assert dict(filters.exif_rows({"ExposureTime": 2.5}))["Exposure"] == "2.5 s"
    assert filters.exif_rows({"FNumber": "junk", "ExposureTime": 0}) == []


def test_rejections_in_words():
    # The processor's own message wins, as a sentence.
    assert filters.rejection_words({"code": "not_an_image", "message": "the file is markup"}) == "The file is markup."
    # Without one, the code's words.
    assert filters.rejection_words({"code": "too_many_frames", "message": ""}) == "The animation has too many frames."
    assert filters.rejection_words(None) == filters.UNKNOWN_REJECTION
    # A quarantine says so and names the finding.
    assert (filters.rejection_words({"code": "malware", "message": "Eicar-Test-Signature"})
            == "Quarantined: a virus scanner flagged this file (Eicar-Test-Signature).")
    assert (filters.rejection_words({"code": "moderation", "message": "nudity."})
            == "Quarantined: the content check refused this file (nudity).")


def test_every_rejection_code_and_status_has_words():
    assert set(constants.REJECTION_WORDS) == REJECTION_CODES
    assert set(constants.STATUS_WORDS) == set(STATUSES)
    assert set(constants.QUARANTINE_WORDS) <= REJECTION_CODES


def test_page_constants_come_from_core_and_settings():
    values = constants.page_constants(max_upload_bytes=123, convert_max_edge=456, max_description_length=78,
                                      quarantine_days=9, page_size_max=50,
                                      upload_content_types={"image/png", "image/jpeg"})
    assert (values["max_upload_bytes"], values["convert_max_edge"], values["max_description_length"],
            values["quarantine_days"], values["page_size_max"]) == (123, 456, 78, 9, 50)
    assert values["quality_range"] == {"min": QUALITY_RANGE[0], "max": QUALITY_RANGE[1]}
    assert values["upload_content_types"] == ["image/jpeg", "image/png"]
    assert [v for v, _ in values["convert_formats"]] == list(CONVERT_FORMATS)
    assert [v for v, _ in values["fits"]] == list(FITS)
    assert [v for v, _ in values["watermark_positions"]] == list(WATERMARK_POSITIONS)
    assert values["watermark_default_position"] == "bottom-right"   # the API's default
    assert values["watermark_opacity_percent"] == {"min": round(OPACITY_RANGE[0] * 100), "max": 100,
                                                   "default": 50}
    assert values["watermark_max_text"] == WATERMARK_TEXT_MAX
    assert [v for v, _ in values["statuses"]] == list(STATUSES)
    assert set(values["rejection_words"]) == REJECTION_CODES
    # Every value has words of its own, not the bare value.
    for key in ("convert_formats", "fits", "watermark_positions", "statuses"):
        assert all(words != value or value.isupper() for value, words in values[key]), key


def test_accept_attribute_lists_types_then_extensions():
    accept = constants.accept_attribute({"image/png"}).split(",")
    assert accept[0] == "image/png" and ".jpg" in accept and ".heic" in accept


def test_file_versions_hash_content_and_refuse_escapes(tmp_path):
    (tmp_path / "x.css").write_text("a")
    versions = assets.AssetVersions()
    first = versions.version(tmp_path, "x.css")
    assert len(first) == assets.VERSION_DIGITS
    (tmp_path / "x.css").write_text("b")
    assert versions.version(tmp_path, "x.css") == first  # remembered for the process's life
    assert assets.file_version(tmp_path, "x.css") != first
    with pytest.raises(FileNotFoundError):
        versions.version(tmp_path, "../secret")
    with pytest.raises(FileNotFoundError):
        assets.file_version(tmp_path, "missing.css")


def test_tree_version_changes_with_any_file_or_name(tmp_path):
    (tmp_path / "a.js").write_text("export const a = 1;")
    (tmp_path / "b.js").write_text("export const b = 2;")
    before = assets.tree_version(tmp_path)
    assert assets.tree_version(tmp_path) == before
    (tmp_path / "b.js").write_text("export const b = 3;")
    changed = assets.tree_version(tmp_path)
    assert changed != before
    (tmp_path / "b.js").rename(tmp_path / "c.js")
    assert assets.tree_version(tmp_path) != changed


def test_cache_control_says_immutable_only_for_current_versions():
    assert "immutable" in assets.cache_control(True)
    assert assets.cache_control(False) == assets.UNVERSIONED_CACHE_CONTROL


def test_the_published_tag_rule_is_the_servers():
    """The scripts normalise a tag filter with this data (tags.js): applied the way the browser
    does, with the patterns compiled from their JSON text, it gives what normalise_tag gives."""
    rule = json.loads(json.dumps(constants.page_constants(
        max_upload_bytes=1, convert_max_edge=1, max_description_length=1, quarantine_days=1, page_size_max=1,
        upload_content_types=set())))["tag_rule"]
    invisible, spaces = re.compile(rule["invisible"]), re.compile(rule["spaces"])

    def as_the_browser_does(text: str) -> str:
        text = spaces.sub(" ", invisible.sub("", unicodedata.normalize(rule["normal_form"], text)))
        return text.strip(" ").lower()

    for tag in ("  Beach\u200e  Day\t", "Cafe\u0301", "\u202e\u2066", "a\u3000\u00a0b", "x\ud800y", "\ufeffbom"):
        assert as_the_browser_does(tag) == normalise_tag(tag)
