"""``imageservice setup`` makes what infrastructure/data.yaml defines, read from the template
itself: applied to moto, the bucket's lifecycle, CORS and event prefixes and the tables' keys,
indexes and TTL equal the template's (docs/DESIGN.md "One definition of each fact")."""

from __future__ import annotations

import pytest

from imageservice.adapters.aws.factory import build_aws_clients
from imageservice.adapters.aws.setup import setup_resources
from imageservice.adapters.aws.template import DataTemplate
from imageservice.core import keys
from imageservice.settings import Settings


@pytest.fixture
def made(moto_server, aws_names):
    settings = Settings.from_env({**aws_names.env(moto_server.endpoint), "IMAGESERVICE_QUARANTINE_DAYS": "9"})
    lines = list(setup_resources(settings))
    return settings, build_aws_clients(settings), lines


def test_the_bucket_is_what_the_template_says(made):
    settings, clients, _ = made
    template = DataTemplate.load({"QuarantineDays": 9})
    lifecycle = clients.s3.get_bucket_lifecycle_configuration(Bucket=settings.bucket)["Rules"]
    assert {r["ID"] for r in lifecycle} == {"ExpireSessionWorkspaces", "AbortIncompleteMultipartUploads",
                                            "ForgetDeletedObjects", "ExpireQuarantine", "ExpireCachedConversions"}
    by_id = {r["ID"]: r for r in lifecycle}
    assert by_id["ExpireQuarantine"]["Expiration"]["Days"] == 9  # the setting, not the template's default
    assert by_id["ExpireQuarantine"]["Filter"]["Prefix"] == keys.QUARANTINE
    assert by_id["ExpireSessionWorkspaces"]["Filter"]["Prefix"] == keys.SESSION_PREFIX
    assert by_id["ExpireCachedConversions"]["Filter"]["Prefix"] == keys.CONVERSIONS
    assert len(lifecycle) == len(template.lifecycle_rules())
    [cors] = clients.s3.get_bucket_cors(Bucket=settings.bucket)["CORSRules"]
    assert cors["AllowedHeaders"] == ["Content-Type", "If-None-Match"]
    assert sorted(template.event_prefixes()) == sorted([keys.ORIGINALS, keys.SESSION_PREFIX + keys.ORIGINALS])
    events = clients.s3.get_bucket_notification_configuration(Bucket=settings.bucket)["QueueConfigurations"]
    assert sorted(e["Filter"]["Key"]["FilterRules"][0]["Value"] for e in events) == sorted(template.event_prefixes())


def test_the_tables_are_what_the_template_says(made):
    settings, clients, _ = made
    template = DataTemplate.load()
    table = clients.dynamodb.describe_table(TableName=settings.table)["Table"]
    keys_, indexes, ttl = template.table("ImagesTable")
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == keys_
    assert {i["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]]
            for i in table["GlobalSecondaryIndexes"]} == indexes
    assert clients.dynamodb.describe_time_to_live(TableName=settings.table)["TimeToLiveDescription"][
        "AttributeName"] == ttl == "ttl"
    assert template.table("SessionsTable")[2] == "expiration"  # what Flask-Session's backend writes


def test_conditions_and_parameters_resolve():
    assert [r["ID"] for r in DataTemplate.load({"ConversionRetentionDays": 0}).lifecycle_rules()].count(
        "ExpireCachedConversions") == 0
    assert DataTemplate.load().dead_letter_retention() == 14 * 24 * 3600
