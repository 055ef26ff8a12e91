"""The CloudFormation templates, Dockerfile and buildspec as tested artifacts.

Nothing is deployed: the templates are parsed with cfn-lint's own YAML loader (which turns
!Ref, !Sub, !GetAtt ... into their JSON forms) and the facts that matter are asserted:
public access, encryption, least privilege, the wiring between stacks, and the contract with
the app (names, environment, key layout).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml", reason="cfn-lint is not installed (make test installs it)")

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
STACKS = ("network", "data", "pipeline", "processor", "app")  # the deploy order (DEPLOY.md)
STACK_PARAMETERS = {"NetworkStackName": "network", "DataStackName": "data", "PipelineStackName": "pipeline"}
DATA_ACTION_PREFIXES = ("s3:", "dynamodb:", "sqs:")
IMAGE_PREFIXES = ("originals/", "derivatives/", "conversions/", "sessions/")


# ------------------------------------------------------------------------------- helpers

@functools.cache
def template(stack: str) -> dict[str, Any]:
    return cfn_yaml.load(str(INFRA / f"{stack}.yaml"))


def resources(stack: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
    found = template(stack)["Resources"]
    return {name: res for name, res in found.items() if kind is None or res["Type"] == kind}


def the(stack: str, kind: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``kind`` in ``stack`` (logical id, properties)."""
    found = resources(stack, kind)
    assert len(found) == 1, f"{stack}.yaml should have exactly one {kind}, has {sorted(found)}"
    name, res = next(iter(found.items()))
    return name, res.get("Properties", {})


def props(stack: str, logical_id: str) -> dict[str, Any]:
    return template(stack)["Resources"][logical_id].get("Properties", {})


def sub_text(node: Any) -> str:
    """The template string of a Fn::Sub (either form)."""
    assert isinstance(node, dict) and "Fn::Sub" in node, f"expected Fn::Sub, got {node!r}"
    value = node["Fn::Sub"]
    return value[0] if isinstance(value, list) else value


def imported(node: Any) -> tuple[str, str]:
    """("DataStackName", "BucketArn") for ImportValue of "${DataStackName}-BucketArn"."""
    assert isinstance(node, dict) and "Fn::ImportValue" in node, f"expected Fn::ImportValue, got {node!r}"
    match = re.fullmatch(r"\$\{(\w+)\}-(\w+)", sub_text(node["Fn::ImportValue"]))
    assert match, f"unexpected import name in {node!r}"
    return match.group(1), match.group(2)


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def exports(stack: str) -> dict[str, Any]:
    """Export suffix -> output value."""
    found = {}
    for output in template(stack).get("Outputs", {}).values():
        if "Export" in output:
            name = sub_text(output["Export"]["Name"])
            assert name.startswith("${AWS::StackName}-"), name
            found[name.removeprefix("${AWS::StackName}-")] = output["Value"]
    return found


def policy_documents() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every identity policy: inline role policies, AWS::IAM::Policy and ManagedPolicy."""
    for stack in STACKS:
        for name, res in resources(stack).items():
            properties = res.get("Properties", {})
            if res["Type"] == "AWS::IAM::Role":
                for policy in properties.get("Policies", []):
                    yield stack, f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
            elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                yield stack, name, properties["PolicyDocument"]


def statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for statement in as_list(document["Statement"]):
        if isinstance(statement, dict) and "Fn::If" in statement:
            yield from (s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s)
        else:
            yield statement


def role_statement(stack: str, role: str, sid: str) -> dict[str, Any]:
    for policy in props(stack, role)["Policies"]:
        for statement in statements(policy["PolicyDocument"]):
            if statement.get("Sid") == sid:
                return statement
    raise AssertionError(f"{stack}.yaml {role} has no statement {sid}")


def bucket_policy_for(stack: str, bucket: str) -> dict[str, Any]:
    for res in resources(stack, "AWS::S3::BucketPolicy").values():
        if res["Properties"]["Bucket"] == {"Ref": bucket}:
            return res["Properties"]["PolicyDocument"]
    raise AssertionError(f"{stack}.yaml: no bucket policy for {bucket}")


def container(stack: str = "app") -> dict[str, Any]:
    _, task = the(stack, "AWS::ECS::TaskDefinition")
    (web,) = task["ContainerDefinitions"]
    return web


def environment_of(web: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for entry in web["Environment"]:
        if "Fn::If" in entry:
            entry = entry["Fn::If"][1]
        found[entry["Name"]] = entry["Value"]
    return found


# ------------------------------------------------------------------------------- all templates

@pytest.mark.parametrize("stack", STACKS)
def test_template_is_described_and_every_parameter_documented(stack):
    parsed = template(stack)
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    assert len(parsed["Description"]) > 40
    for name, parameter in parsed.get("Parameters", {}).items():
        assert parameter.get("Description"), f"{stack}.yaml parameter {name} has no Description"


def test_every_import_names_an_export_of_an_earlier_stack():
    seen: dict[str, set[str]] = {stack: set() for stack in STACKS}
    for stack in STACKS:
        for node in walk(template(stack)):
            if isinstance(node, dict) and "Fn::ImportValue" in node:
                parameter, export = imported(node)
                producer = STACK_PARAMETERS[parameter]
                assert export in exports(producer), f"{stack}.yaml imports {producer}'s {export}, which is not exported"
                seen[stack].add(producer)
    order = {stack: index for index, stack in enumerate(STACKS)}
    for consumer, producers in seen.items():
        for producer in producers:
            assert order[producer] < order[consumer], f"{consumer} imports from {producer}, deployed later"
    assert seen["network"] == set()


def test_stack_name_parameters_agree_on_default_names():
    for stack in STACKS:
        for name, parameter in template(stack).get("Parameters", {}).items():
            if name in STACK_PARAMETERS:
                assert parameter["Default"] == f"imageservice-{STACK_PARAMETERS[name]}"
    assert template("pipeline")["Parameters"]["ProcessorStackName"]["Default"] == "imageservice-processor"


def test_environment_name_is_defined_once_and_imported_everywhere_else():
    assert "Environment" in template("network")["Parameters"]
    assert exports("network")["Environment"] == {"Ref": "Environment"}
    for stack in STACKS[1:]:
        assert "Environment" not in template(stack)["Parameters"], f"{stack}.yaml should import Environment"


# ------------------------------------------------------------------------------- S3

def all_buckets() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack in STACKS:
        for name, res in resources(stack, "AWS::S3::Bucket").items():
            yield stack, name, res["Properties"]


def test_every_bucket_blocks_public_access_entirely():
    buckets = list(all_buckets())
    assert len(buckets) >= 4
    for stack, name, bucket in buckets:
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, f"{stack}.yaml {name}"


def test_every_bucket_is_encrypted_versioned_and_logged():
    for stack, name, bucket in all_buckets():
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), name
        assert bucket["VersioningConfiguration"]["Status"] == "Enabled", name
        if name == "AccessLogsBucket":
            continue  # the log target itself
        logging = bucket["LoggingConfiguration"]
        assert imported(logging["DestinationBucketName"]) == ("NetworkStackName", "AccessLogsBucketName"), name


def test_every_bucket_policy_denies_insecure_transport():
    for stack, name, _ in all_buckets():
        document = bucket_policy_for(stack, name)
        denies = [
            s for s in statements(document)
            if s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Principal"] == "*"
            and s["Action"] == "s3:*"
        ]
        assert denies, f"{stack}.yaml {name} has no TLS-only statement"
        resources_ = as_list(denies[0]["Resource"])
        assert {"Fn::GetAtt": [name, "Arn"]} in resources_
        assert any(isinstance(r, dict) and "Fn::Sub" in r and sub_text(r) == f"${{{name}.Arn}}/*" for r in resources_)


def test_pipeline_artifacts_are_encrypted_with_the_environment_key():
    (rule,) = props("pipeline", "ArtifactBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert imported(default["KMSMasterKeyID"]) == ("NetworkStackName", "EnvironmentKeyArn")
    _, pipeline = the("pipeline", "AWS::CodePipeline::Pipeline")
    assert pipeline["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS"


def images_bucket() -> dict[str, Any]:
    return props("data", "ImagesBucket")


def lifecycle_rules() -> list[dict[str, Any]]:
    rules = []
    for rule in images_bucket()["LifecycleConfiguration"]["Rules"]:
        rules.append(rule["Fn::If"][1] if "Fn::If" in rule else rule)
    return rules


def test_session_workspaces_expire_after_a_day():
    (rule,) = [r for r in lifecycle_rules() if r.get("Prefix") == "sessions/"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == 1
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


def test_incomplete_multipart_uploads_are_aborted_bucket_wide():
    rules = [r for r in lifecycle_rules() if "AbortIncompleteMultipartUpload" in r]
    assert rules and "Prefix" not in rules[0] and "Filter" not in rules[0]
    assert rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_conversions_expire_only_when_asked():
    raw = [r for r in images_bucket()["LifecycleConfiguration"]["Rules"] if "Fn::If" in r]
    (conditional,) = raw
    condition, rule, otherwise = conditional["Fn::If"]
    assert condition == "ExpireConversions" and otherwise == {"Ref": "AWS::NoValue"}
    assert rule["Prefix"] == "conversions/"
    assert rule["ExpirationInDays"] == {"Ref": "ConversionRetentionDays"}
    assert template("data")["Conditions"]["ExpireConversions"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ConversionRetentionDays"}, 0]}]
    }


def test_object_created_under_both_originals_prefixes_goes_to_the_jobs_queue():
    configurations = images_bucket()["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = set()
    for configuration in configurations:
        assert configuration["Event"] == "s3:ObjectCreated:*"
        assert configuration["Queue"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
        (rule,) = configuration["Filter"]["S3Key"]["Rules"]
        assert rule["Name"] == "prefix"
        prefixes.add(rule["Value"])
    assert prefixes == {"originals/", "sessions/originals/"}


def test_bucket_and_queue_policy_cycle_is_broken_by_a_computed_bucket_name():
    bucket = template("data")["Resources"]["ImagesBucket"]
    assert bucket["DependsOn"] == "JobsQueuePolicy"
    name = sub_text(bucket["Properties"]["BucketName"])
    assert name == "${Environment}-images-${AWS::AccountId}-${AWS::Region}"
    # The queue policy names the same bucket as a string, never by reference.
    policy = props("data", "JobsQueuePolicy")
    (statement,) = statements(policy["PolicyDocument"])
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert sub_text(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{name}"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert not any(node == {"Ref": "ImagesBucket"} for node in walk(policy))


def test_bucket_cors_admits_only_the_app_origin():
    (rule,) = images_bucket()["CorsConfiguration"]["CorsRules"]
    assert [sub_text(o) for o in rule["AllowedOrigins"]] == ["https://${DomainName}"]
    assert set(rule["AllowedMethods"]) == {"PUT", "GET", "HEAD"}
    assert rule["AllowedHeaders"] == ["Content-Type", "If-None-Match"]  # what a presigned PUT sends


# ------------------------------------------------------------------------------- CDN

def test_cdn_is_optional_and_uses_origin_access_control():
    conditions = template("data")["Conditions"]
    assert conditions["HasCdn"] == {"Fn::Equals": [{"Ref": "EnableCdn"}, "true"]}
    for name in ("CdnOriginAccessControl", "CdnDistribution", "CdnNotFoundFunction"):
        assert template("data")["Resources"][name]["Condition"] == "HasCdn"
    oac = props("data", "CdnOriginAccessControl")["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3" and oac["SigningBehavior"] == "always"
    config = props("data", "CdnDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["CdnOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""


def test_cdn_serves_derivatives_only():
    config = props("data", "CdnDistribution")["DistributionConfig"]
    assert {b["PathPattern"] for b in config["CacheBehaviors"]} == {"derivatives/*", "sessions/derivatives/*"}
    for behavior in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert behavior["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")
        assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    # Everything else is answered at the edge.
    (association,) = config["DefaultCacheBehavior"]["FunctionAssociations"]
    assert association["FunctionARN"] == {"Fn::GetAtt": ["CdnNotFoundFunction", "FunctionMetadata.FunctionARN"]}
    assert "statusCode: 404" in props("data", "CdnNotFoundFunction")["FunctionCode"]
    # And S3 only lets this distribution read those two prefixes.
    document = bucket_policy_for("data", "ImagesBucket")
    (grant,) = [s for s in statements(document) if s.get("Sid") == "CdnReadsDerivativesOnly"]
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert grant["Action"] == "s3:GetObject"
    assert sorted(sub_text(r) for r in grant["Resource"]) == [
        "${ImagesBucket.Arn}/derivatives/*",
        "${ImagesBucket.Arn}/sessions/derivatives/*",
    ]
    assert sub_text(grant["Condition"]["StringEquals"]["aws:SourceArn"]).endswith(":distribution/${CdnDistribution}")


# ------------------------------------------------------------------------------- DynamoDB

def test_images_table_keys_billing_recovery_encryption_and_ttl():
    table = props("data", "ImagesTable")
    assert table["KeySchema"] == [
        {"AttributeName": "user_id", "KeyType": "HASH"},
        {"AttributeName": "image_id", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("user_id", "S"),
        ("image_id", "S"),
        ("owner_status", "S"),
    }
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True and table["SSESpecification"]["SSEType"] == "KMS"
    assert imported(table["SSESpecification"]["KMSMasterKeyId"]) == ("NetworkStackName", "EnvironmentKeyArn")
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert template("data")["Resources"]["ImagesTable"]["DeletionPolicy"] == "Retain"


def test_images_table_has_the_status_index_the_catalog_queries():
    from imageservice.adapters.dynamodb.items import STATUS_INDEX, STATUS_INDEX_KEYS

    (index,) = props("data", "ImagesTable")["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": STATUS_INDEX,
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in STATUS_INDEX_KEYS],
        "Projection": {"ProjectionType": "ALL"},  # a status page is read from the index alone
    }
    query = role_statement("app", "TaskRole", "ImageStatusIndex")
    assert query["Action"] == "dynamodb:Query"
    assert sub_text(query["Resource"]) == f"${{TableArn}}/index/{STATUS_INDEX}"


def test_the_processor_may_delete_tag_items_and_nothing_else():
    """DeleteItem only under the tag partitions (DynamoImages.replace removing dropped tags):
    the processor never deletes a record. moto cannot evaluate this condition, so the
    enforced-flow test leaves the statement out; its shape is checked here."""
    from imageservice.adapters.dynamodb.items import TAG_PREFIX

    delete = role_statement("processor", "ProcessorRole", "RemoveTagItems")
    assert delete["Action"] == "dynamodb:DeleteItem"
    assert imported(delete["Resource"]) == ("DataStackName", "TableArn")
    assert delete["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{TAG_PREFIX}*"]}}
    others = [s for s in statements(props("processor", "ProcessorRole")["Policies"][0]["PolicyDocument"])
              if s.get("Sid") != "RemoveTagItems"]
    assert not [s["Sid"] for s in others if "dynamodb:DeleteItem" in as_list(s["Action"])]


def test_sessions_table_matches_flask_session_dynamodb_backend():
    spec = importlib.util.find_spec("flask_session")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Flask-Session is not installed (make test installs the project)")
    source = (Path(next(iter(spec.submodule_search_locations))) / "dynamodb" / "dynamodb.py").read_text()
    table = props("data", "SessionsTable")
    (key,) = table["KeySchema"]
    ttl = table["TimeToLiveSpecification"]
    # The backend creates its table with this hash key and writes the expiry to this attribute.
    assert f'"AttributeName": "{key["AttributeName"]}", "KeyType": "HASH"' in source
    assert f'"AttributeName": "{ttl["AttributeName"]}"' in source
    assert f"{ttl['AttributeName']} = :exp" in source
    assert key["AttributeName"] == "id" and ttl == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True


# ------------------------------------------------------------------------------- SQS

def test_jobs_queue_redrives_to_the_dead_letter_queue():
    queue = props("data", "JobsQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert template("data")["Parameters"]["MaxReceiveCount"]["Default"] == 5
    for name in ("JobsQueue", "JobsDeadLetterQueue"):
        assert imported(props("data", name)["KmsMasterKeyId"]) == ("NetworkStackName", "EnvironmentKeyArn")
    # The processor knows which attempt is the last.
    env = props("processor", "ProcessorFunction")["Environment"]["Variables"]
    assert imported(env["IMAGESERVICE_JOB_MAX_ATTEMPTS"]) == ("DataStackName", "MaxReceiveCount")
    assert exports("data")["MaxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_queue_visibility_timeout_is_six_times_the_lambda_timeout():
    data = template("data")
    allowed = data["Parameters"]["ProcessorTimeoutSeconds"]["AllowedValues"]
    mapping = data["Mappings"]["VisibilityTimeout"]
    assert {str(v) for v in allowed} == set(mapping)
    for timeout in allowed:
        visibility = mapping[str(timeout)]["Seconds"]
        assert visibility == 6 * int(timeout)
        assert visibility <= 43200  # SQS's maximum
    assert props("data", "JobsQueue")["VisibilityTimeout"] == {
        "Fn::FindInMap": ["VisibilityTimeout", {"Ref": "ProcessorTimeoutSeconds"}, "Seconds"]
    }
    assert exports("data")["ProcessorTimeoutSeconds"] == {"Ref": "ProcessorTimeoutSeconds"}
    function = props("processor", "ProcessorFunction")
    assert imported(function["Timeout"]) == ("DataStackName", "ProcessorTimeoutSeconds")
    # The processing lease is the function timeout: shorter than the queue's 6x, so a message
    # redelivered after a crashed invocation always finds the lease lapsed.
    environment = function["Environment"]["Variables"]
    assert imported(environment["IMAGESERVICE_JOB_VISIBILITY_TIMEOUT"]) == ("DataStackName", "ProcessorTimeoutSeconds")


def test_queue_alarms_watch_dead_letters_and_age():
    alarms = {p["MetricName"]: p for p in (r["Properties"] for r in resources("data", "AWS::CloudWatch::Alarm").values())
              if "MetricName" in p}
    dead = alarms["ApproximateNumberOfMessagesVisible"]
    assert dead["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]}
    assert dead["Threshold"] == 0 and dead["ComparisonOperator"] == "GreaterThanThreshold"
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["JobsQueue", "QueueName"]}
    assert age["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    assert template("data")["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert "KmsMasterKeyId" in props("data", "AlarmTopic")


ALARM_TOPIC_CHOICE = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


def test_every_alarm_goes_to_the_alarm_topic_parameter_or_the_topic_made_for_it():
    assert template("data")["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert template("data")["Resources"]["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert exports("data")["AlarmTopicArn"] == ALARM_TOPIC_CHOICE
    for stack in STACKS:
        for name, alarm in resources(stack, "AWS::CloudWatch::Alarm").items():
            for actions in (alarm["Properties"]["AlarmActions"], alarm["Properties"].get("OKActions")):
                assert actions is not None, f"{stack}.yaml {name} has no OKActions"
                (target,) = actions
                assert target == ALARM_TOPIC_CHOICE if stack == "data" else imported(target) == (
                    "DataStackName", "AlarmTopicArn"), (stack, name, target)


def alarm_on(stack: str, metric: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in resources(stack, "AWS::CloudWatch::Alarm").values()
                if r["Properties"].get("MetricName") == metric]
    return found


def test_processor_alarms_watch_failures_p95_time_and_throttles_of_the_pipelines_own_metrics():
    from imageservice.metrics import METRICS, NAMESPACE

    service = props("processor", "ProcessorFunction")["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    handler_source = (ROOT / "lambda" / "handler.py").read_text()
    assert f'SERVICE = "{service}"' in handler_source  # the dimension the handler's metrics carry
    failures = alarm_on("processor", METRICS["images_rejected"].emf_name)
    assert failures["Namespace"] == NAMESPACE
    assert failures["Dimensions"] == [{"Name": "service", "Value": service}, {"Name": "code", "Value": "processing_failed"}]
    timing = alarm_on("processor", METRICS["processing_time"].emf_name)
    assert timing["ExtendedStatistic"] == "p95" and timing["Threshold"] == {"Ref": "ProcessingP95AlarmMilliseconds"}
    assert timing["Dimensions"] == [{"Name": "service", "Value": service}]
    assert alarm_on("processor", "Throttles")["Namespace"] == "AWS/Lambda"
    (throttles,) = [r["Properties"] for n, r in resources("data", "AWS::CloudWatch::Alarm").items() if "Throttles" in n]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in throttles["Metrics"] if "MetricStat" in m}
    assert names == {"ReadThrottleEvents", "WriteThrottleEvents"}


def test_load_balancer_5xx_alarms_watch_the_targets_and_the_balancer_itself():
    for metric in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"):
        alarm = alarm_on("app", metric)
        assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]}


def test_dashboard_is_valid_json_showing_every_service_metric():
    from imageservice.metrics import METRICS, NAMESPACE

    body = props("app", "Dashboard")["DashboardBody"]["Fn::Sub"]
    text, variables = body
    assert set(re.findall(r"\$\{([^}!]+)\}", text)) == set(variables) | {"AWS::Region"}
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
    shown = {row[1] for widget in dashboard["widgets"] for row in widget["properties"]["metrics"]
             if isinstance(row[0], str) and row[0] == NAMESPACE}
    assert shown == {m.emf_name for m in METRICS.values()}
    assert any("SEARCH(" in str(widget) and "ImagesRejected" in str(widget) for widget in dashboard["widgets"])


def test_image_events_topic_is_exported_and_only_the_processor_may_publish():
    assert "KmsMasterKeyId" in props("data", "ImageEventsTopic")
    assert exports("data")["ImageEventsTopicArn"] == {"Ref": "ImageEventsTopic"}
    publish = role_statement("processor", "ProcessorRole", "PublishImageEvents")
    assert publish["Action"] == "sns:Publish" and imported(publish["Resource"]) == ("DataStackName", "ImageEventsTopicArn")
    app_actions = {a for _, name, doc in policy_documents() if name.startswith("TaskRole")
                   for s in statements(doc) for a in as_list(s["Action"])}
    assert not {a for a in app_actions if a.startswith("sns:")}
    lambda_env = props("processor", "ProcessorFunction")["Environment"]["Variables"]
    assert imported(lambda_env["IMAGESERVICE_TOPIC_ARN"]) == ("DataStackName", "ImageEventsTopicArn")
    assert imported(environment_of(container())["IMAGESERVICE_TOPIC_ARN"]) == ("DataStackName", "ImageEventsTopicArn")


def test_quarantined_files_expire_after_quarantine_days():
    rules = {r["Id"]: r for r in props("data", "ImagesBucket")["LifecycleConfiguration"]["Rules"] if "Id" in r}
    rule = rules["ExpireQuarantine"]
    assert (rule["Prefix"], rule["ExpirationInDays"]) == ("quarantine/", {"Ref": "QuarantineDays"})
    lambda_env = props("processor", "ProcessorFunction")["Environment"]["Variables"]
    assert imported(lambda_env["IMAGESERVICE_QUARANTINE_DAYS"]) == ("DataStackName", "QuarantineDays")


# ------------------------------------------------------------------------------- Lambda


def assert_every_imageservice_name_is_a_setting(env: dict) -> None:
    """Every IMAGESERVICE_* variable a template sets is a field the app's Settings reads."""
    settings = pytest.importorskip("imageservice.settings")
    fields = {f.name.upper() for f in dataclasses.fields(settings.Settings)}
    for name in env:
        if name.startswith("IMAGESERVICE_"):
            assert name.removeprefix("IMAGESERVICE_") in fields, f"{name} is no setting of the app"

def test_processor_runtime_handler_and_code_location():
    function = props("processor", "ProcessorFunction")
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "handler.handler"
    assert function["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "MaxConcurrency"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "ProcessorLogGroup"}
    env = function["Environment"]["Variables"]
    assert env["IMAGESERVICE_BACKEND"] == "aws"
    assert {imported(env[f"IMAGESERVICE_{n}"])[1] for n in ("BUCKET", "TABLE", "QUEUE_URL")} == {
        "BucketName",
        "TableName",
        "QueueUrl",
    }
    assert "AWS_REGION" not in env  # reserved: Lambda sets it
    assert_every_imageservice_name_is_a_setting(env)


def test_event_source_mapping_reports_partial_batch_failures():
    _, mapping = the("processor", "AWS::Lambda::EventSourceMapping")
    assert "ReportBatchItemFailures" in mapping["FunctionResponseTypes"]
    assert imported(mapping["EventSourceArn"]) == ("DataStackName", "QueueArn")
    assert mapping["FunctionName"] == {"Ref": "ProcessorFunction"}
    assert mapping["BatchSize"] == {"Ref": "BatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}
    # The mapping never drives the function into throttling.
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}
    parameters = template("processor")["Parameters"]
    assert parameters["BatchSize"]["MaxValue"] <= 10  # larger batches need a batching window
    assert parameters["MaxConcurrency"]["MinValue"] >= 2  # the mapping's minimum


def test_processor_role_is_scoped_to_the_image_prefixes_table_and_queue():
    def prefixes(sid: str) -> list[str]:
        statement = role_statement("processor", "ProcessorRole", sid)
        return sorted(sub_text(r).removeprefix("${BucketArn}/") for r in statement["Resource"])

    assert prefixes("ReadOriginals") == ["originals/*", "sessions/originals/*"]
    # The processor never writes conversions (the app makes them) but may quarantine.
    assert prefixes("WriteDerivativesAndAdoptedOriginals") == [
        "derivatives/*", "originals/*", "quarantine/*", "sessions/derivatives/*", "sessions/originals/*"]
    assert prefixes("RemoveRejectedObjects") == sorted(f"{p}*" for p in IMAGE_PREFIXES)
    records = role_statement("processor", "ProcessorRole", "ImageRecords")
    assert imported(records["Resource"]) == ("DataStackName", "TableArn")
    assert not any(a in records["Action"] for a in ("dynamodb:Scan", "dynamodb:*"))
    jobs = role_statement("processor", "ProcessorRole", "ConsumeJobs")
    assert imported(jobs["Resource"]) == ("DataStackName", "QueueArn")
    logs = role_statement("processor", "ProcessorRole", "OwnLogGroup")
    assert logs["Resource"] == {"Fn::GetAtt": ["ProcessorLogGroup", "Arn"]}


# ------------------------------------------------------------------------------- IAM

def test_no_policy_grants_data_actions_on_every_resource():
    checked = 0
    for stack, where, document in policy_documents():
        for statement in statements(document):
            checked += 1
            actions = [a.lower() for a in as_list(statement["Action"])]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), f"{stack}.yaml {where}"
            if statement["Effect"] != "Allow":
                continue
            if "*" in as_list(statement["Resource"]):
                data = [a for a in actions if a.startswith(DATA_ACTION_PREFIXES)]
                assert not data, f"{stack}.yaml {where} allows {data} on Resource '*'"
    assert checked > 40


def test_no_role_attaches_managed_policies_or_allows_any_service():
    for stack in STACKS:
        for name, role in resources(stack, "AWS::IAM::Role").items():
            properties = role["Properties"]
            assert "ManagedPolicyArns" not in properties, f"{stack}.yaml {name}"
            (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
            service = trust["Principal"]["Service"]
            assert isinstance(service, (str, dict)) and service != "*", f"{stack}.yaml {name}"
            # Services documented to send aws:SourceAccount/SourceArn when assuming a role get
            # the confused-deputy condition; Lambda and CloudFormation are not among them
            # (their roles are guarded by iam:PassRole instead).
            if service not in ("lambda.amazonaws.com", "cloudformation.amazonaws.com"):
                assert "Condition" in trust, f"{stack}.yaml {name} trust has no confused-deputy condition"


def test_every_role_lives_under_the_environment_path():
    for stack in STACKS:
        for name, role in resources(stack, "AWS::IAM::Role").items():
            path = sub_text(role["Properties"]["Path"])
            assert re.fullmatch(r"/\$\{Environment\}/[a-z]+/", path), f"{stack}.yaml {name}: {path}"


def test_kms_key_rotates_and_log_groups_are_encrypted_with_retention():
    key = props("network", "EnvironmentKey")
    assert key["EnableKeyRotation"] is True
    for stack in STACKS:
        for name, group in resources(stack, "AWS::Logs::LogGroup").items():
            properties = group["Properties"]
            assert "RetentionInDays" in properties, f"{stack}.yaml {name}"
            assert "KmsKeyId" in properties, f"{stack}.yaml {name}"


# ------------------------------------------------------------------------------- network

def test_two_public_and_two_private_subnets_in_two_zones():
    subnets = resources("network", "AWS::EC2::Subnet")
    assert sorted(subnets) == ["PrivateSubnet1", "PrivateSubnet2", "PublicSubnet1", "PublicSubnet2"]
    for name, subnet in subnets.items():
        zone = subnet["Properties"]["AvailabilityZone"]["Fn::Select"][0]
        assert zone == (0 if name.endswith("1") else 1)
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def default_route(route_table: str) -> dict[str, Any]:
    (route,) = [
        r["Properties"] for r in resources("network", "AWS::EC2::Route").values()
        if r["Properties"]["RouteTableId"] == {"Ref": route_table}
    ]
    assert route["DestinationCidrBlock"] == "0.0.0.0/0"
    return route


def route_table_of(subnet: str) -> str:
    (table,) = [
        a["Properties"]["RouteTableId"]["Ref"] for a in resources("network", "AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"] == {"Ref": subnet}
    ]
    return table


def test_private_subnets_route_through_nat_and_public_through_the_internet_gateway():
    for subnet in ("PublicSubnet1", "PublicSubnet2"):
        assert default_route(route_table_of(subnet))["GatewayId"] == {"Ref": "InternetGateway"}
    assert default_route(route_table_of("PrivateSubnet1"))["NatGatewayId"] == {"Ref": "NatGateway1"}
    assert default_route(route_table_of("PrivateSubnet2"))["NatGatewayId"] == {
        "Fn::If": ["NatPerAz", {"Ref": "NatGateway2"}, {"Ref": "NatGateway1"}]
    }


def test_nat_gateway_per_zone_is_a_condition():
    network = template("network")
    assert network["Conditions"]["NatPerAz"] == {"Fn::Equals": [{"Ref": "NatGateways"}, "per-az"]}
    assert network["Parameters"]["NatGateways"]["AllowedValues"] == ["one", "per-az"]
    assert "Condition" not in network["Resources"]["NatGateway1"]
    for name in ("NatGateway2", "NatGateway2Eip"):
        assert network["Resources"][name]["Condition"] == "NatPerAz"
    assert props("network", "NatGateway2")["SubnetId"] == {"Ref": "PublicSubnet2"}


def test_gateway_endpoints_for_s3_and_dynamodb_on_the_private_route_tables():
    services = {}
    for endpoint in resources("network", "AWS::EC2::VPCEndpoint").values():
        properties = endpoint["Properties"]
        assert properties["VpcEndpointType"] == "Gateway"
        services[sub_text(properties["ServiceName"]).rsplit(".", 1)[1]] = properties["RouteTableIds"]
    assert set(services) == {"s3", "dynamodb"}
    for tables in services.values():
        assert tables == [{"Ref": "PrivateRouteTable1"}, {"Ref": "PrivateRouteTable2"}]


def test_vpc_flow_logs_go_to_cloudwatch_logs_with_retention():
    _, flow_log = the("network", "AWS::EC2::FlowLog")
    assert flow_log["ResourceId"] == {"Ref": "Vpc"} and flow_log["ResourceType"] == "VPC"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"] == {"Ref": "FlowLogGroup"}
    assert flow_log["DeliverLogsPermissionArn"] == {"Fn::GetAtt": ["FlowLogRole", "Arn"]}
    assert props("network", "FlowLogGroup")["RetentionInDays"] == {"Ref": "FlowLogRetentionDays"}


# ------------------------------------------------------------------------------- app

def test_service_runs_in_the_private_subnets_without_public_addresses():
    _, service = the("app", "AWS::ECS::Service")
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert [imported(s) for s in network["Subnets"]] == [
        ("NetworkStackName", "PrivateSubnet1Id"),
        ("NetworkStackName", "PrivateSubnet2Id"),
    ]
    assert exports("network")["PrivateSubnet1Id"] == {"Ref": "PrivateSubnet1"}
    assert exports("network")["PrivateSubnet2Id"] == {"Ref": "PrivateSubnet2"}
    assert service["LaunchType"] == "FARGATE"
    breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}
    assert service["HealthCheckGracePeriodSeconds"] == {"Ref": "HealthCheckGracePeriodSeconds"}


def test_tasks_accept_port_8000_from_the_load_balancer_only():
    (ingress,) = props("app", "TaskSecurityGroup")["SecurityGroupIngress"]
    assert ingress["FromPort"] == ingress["ToPort"] == 8000
    assert ingress["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    assert "CidrIp" not in ingress
    public = props("app", "LoadBalancerSecurityGroup")["SecurityGroupIngress"]
    assert sorted((r["FromPort"], r["CidrIp"]) for r in public) == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]


def test_load_balancer_is_public_logs_access_and_drops_invalid_headers():
    _, alb = the("app", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Scheme"] == "internet-facing"
    assert [imported(s)[1] for s in alb["Subnets"]] == ["PublicSubnet1Id", "PublicSubnet2Id"]
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert imported(attributes["access_logs.s3.bucket"]) == ("NetworkStackName", "AccessLogsBucketName")
    # The log bucket accepts the load balancer's deliveries under that prefix.
    document = bucket_policy_for("network", "AccessLogsBucket")
    (delivery,) = [s for s in statements(document) if s.get("Sid") == "LoadBalancerAccessLogs"]
    assert sub_text(delivery["Resource"]).startswith(f"${{AccessLogsBucket.Arn}}/{attributes['access_logs.s3.prefix']}/")


def test_http_listener_redirects_to_https():
    listeners = {p["Protocol"]: p for p in (r["Properties"] for r in resources("app", "AWS::ElasticLoadBalancingV2::Listener").values())}
    (redirect,) = listeners["HTTP"]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    https = listeners["HTTPS"]
    assert https["Port"] == 443
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert https["SslPolicy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    (forward,) = https["DefaultActions"]
    assert forward == {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
    target_group = props("app", "TargetGroup")
    assert target_group["Port"] == 8000 and target_group["HealthCheckPath"] == "/healthz"
    assert target_group["TargetType"] == "ip"


def test_waf_web_acl_protects_the_load_balancer():
    _, association = the("app", "AWS::WAFv2::WebACLAssociation")
    assert association["ResourceArn"] == {"Ref": "LoadBalancer"}
    assert template("app")["Resources"]["LoadBalancer"]["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    acl_name = association["WebACLArn"]["Fn::GetAtt"][0]
    acl = props("app", acl_name)
    assert acl["Scope"] == "REGIONAL"
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"] if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    rates = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert {r["Name"] for r in rates} == {"RateLimitPerIp", "RateLimitPerShareViewer"}
    for rate in rates:
        assert rate["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimit"}
        assert rate["Action"] == {"Block": {}}
    assert len({r["Priority"] for r in acl["Rules"]}) == len(acl["Rules"])
    _, logging = the("app", "AWS::WAFv2::LoggingConfiguration")
    assert {f["SingleHeader"]["Name"] for f in logging["RedactedFields"]} == {"authorization", "cookie", "x-origin-verify"}


def test_task_definition_runs_non_root_read_only_with_secrets_from_secrets_manager():
    _, task = the("app", "AWS::ECS::TaskDefinition")
    assert task["RequiresCompatibilities"] == ["FARGATE"] and task["NetworkMode"] == "awsvpc"
    web = container()
    assert web["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]
    assert web["User"] == "10001"
    assert web["ReadonlyRootFilesystem"] is True
    assert {m["ContainerPath"] for m in web["MountPoints"]} == {"/tmp"}
    assert web["Secrets"] == [{"Name": "IMAGESERVICE_SECRET_KEY", "ValueFrom": {"Ref": "SecretKey"}}]
    secret = props("app", "SecretKey")
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    command = web["HealthCheck"]["Command"]
    assert command[0] == "CMD-SHELL"
    assert "/healthz" in command[1] and "python" in command[1] and "curl" not in command[1]
    assert web["LogConfiguration"]["LogDriver"] == "awslogs"
    assert web["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "AppLogGroup"}


def test_task_environment_is_the_apps_settings_contract():
    env = environment_of(container())
    required = {
        "IMAGESERVICE_BACKEND", "IMAGESERVICE_BUCKET", "IMAGESERVICE_TABLE", "IMAGESERVICE_QUEUE_URL",
        "IMAGESERVICE_DEAD_LETTER_QUEUE_URL", "IMAGESERVICE_SESSION_TABLE", "IMAGESERVICE_PUBLIC_URL",
        "IMAGESERVICE_SESSION_COOKIE_SECURE", "IMAGESERVICE_WEB_THREADS", "IMAGESERVICE_TRUSTED_PROXIES",
        "IMAGESERVICE_MAX_UPLOAD_BYTES", "AWS_REGION",
    }
    assert required <= set(env)
    assert env["IMAGESERVICE_BACKEND"] == "aws"
    assert env["IMAGESERVICE_SESSION_COOKIE_SECURE"] == "true"
    assert imported(env["IMAGESERVICE_SESSION_TABLE"]) == ("DataStackName", "SessionTableName")
    assert imported(env["IMAGESERVICE_PUBLIC_URL"]) == ("DataStackName", "PublicUrl")
    # One hop: the ALB's X-Forwarded-For entry names the client, its X-Forwarded-Proto the scheme.
    assert env["IMAGESERVICE_TRUSTED_PROXIES"] == "1"
    assert env["PORT"] == "8000"
    # Names the app really reads (Settings fields), apart from boto3's own.
    assert_every_imageservice_name_is_a_setting(env)


def test_task_role_is_scoped_to_prefixes_tables_and_queue():
    objects = role_statement("app", "TaskRole", "ImageObjects")
    assert sorted(sub_text(r).removeprefix("${BucketArn}/") for r in objects["Resource"]) == sorted(
        f"{p}*" for p in IMAGE_PREFIXES
    )
    assert imported(role_statement("app", "TaskRole", "ImageRecordsAndTokens")["Resource"]) == ("DataStackName", "TableArn")
    assert imported(role_statement("app", "TaskRole", "Sessions")["Resource"]) == ("DataStackName", "SessionTableArn")
    enqueue = role_statement("app", "TaskRole", "EnqueueJobs")
    assert "sqs:SendMessage" in enqueue["Action"]
    assert imported(enqueue["Resource"]) == ("DataStackName", "QueueArn")
    secret = role_statement("app", "ExecutionRole", "ReadSecretKey")
    assert secret["Resource"] == {"Ref": "SecretKey"}


def test_service_scales_on_cpu_between_min_and_max_tasks():
    _, target = the("app", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert target["MinCapacity"] == {"Ref": "MinTasks"} and target["MaxCapacity"] == {"Ref": "MaxTasks"}
    assert sub_text(target["ResourceId"]) == "service/${Cluster}/${Service.Name}"
    _, policy = the("app", "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert tracking["TargetValue"] == {"Ref": "CpuTargetPercent"}


def test_cluster_has_container_insights():
    _, cluster = the("app", "AWS::ECS::Cluster")
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


# ------------------------------------------------------------------------------- pipeline

def pipeline_action(provider: str) -> dict[str, Any]:
    _, pipeline = the("pipeline", "AWS::CodePipeline::Pipeline")
    for stage in pipeline["Stages"]:
        for action in stage["Actions"]:
            if "Fn::If" in action:
                action = action["Fn::If"][1]
            if action["ActionTypeId"]["Provider"] == provider:
                return action
    raise AssertionError(f"no {provider} action")


def test_pipeline_is_v2_from_github_through_codebuild_to_both_deployments():
    _, pipeline = the("pipeline", "AWS::CodePipeline::Pipeline")
    assert pipeline["PipelineType"] == "V2"
    assert [s["Name"] for s in pipeline["Stages"]] == ["Source", "Build", "Deploy"]
    source = pipeline_action("CodeStarSourceConnection")["Configuration"]
    assert source["ConnectionArn"] == {"Ref": "ConnectionArn"}
    assert source["FullRepositoryId"] == {"Ref": "FullRepositoryId"}
    assert source["BranchName"] == {"Ref": "BranchName"}
    assert template("pipeline")["Parameters"]["BranchName"]["Default"] == "main"
    build = pipeline_action("CodeBuild")
    assert build["Configuration"]["ProjectName"] == {"Ref": "BuildProject"}
    project = props("pipeline", "BuildProject")
    assert project["Environment"]["PrivilegedMode"] is True
    env_names = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert {"ECR_REPOSITORY_URI", "LAMBDA_CODE_BUCKET", "CONTAINER_NAME"} <= env_names


def test_ecs_deploy_action_targets_the_app_stacks_cluster_service_and_container():
    web = pipeline_action("ECS")["Configuration"]
    _, cluster = the("app", "AWS::ECS::Cluster")
    _, service = the("app", "AWS::ECS::Service")
    assert sub_text(web["ClusterName"]) == sub_text(cluster["ClusterName"]) == "${Environment}-cluster"
    assert sub_text(web["ServiceName"]) == sub_text(service["ServiceName"]) == "${Environment}-web"
    assert web["FileName"] == "imagedefinitions.json"
    project_env = {v["Name"]: v["Value"] for v in props("pipeline", "BuildProject")["Environment"]["EnvironmentVariables"]}
    assert project_env["CONTAINER_NAME"] == container()["Name"]
    assert service["LoadBalancers"][0]["ContainerName"] == container()["Name"]
    # The pipeline may pass exactly the app's task roles.
    passing = role_statement("pipeline", "PipelineRole", "PassWebTaskRoles")
    assert sub_text(passing["Resource"]).endswith(":role/${Environment}/web/*")
    for role in ("TaskRole", "ExecutionRole"):
        assert sub_text(props("app", role)["Path"]) == "/${Environment}/web/"


def test_cloudformation_deploy_action_updates_the_processor_with_the_built_code_key():
    deploy = pipeline_action("CloudFormation")["Configuration"]
    assert deploy["ActionMode"] == "CREATE_UPDATE"
    assert deploy["StackName"] == {"Ref": "ProcessorStackName"}
    assert deploy["TemplatePath"] == "BuildOutput::packaged/processor.yaml"
    assert deploy["TemplateConfiguration"] == "BuildOutput::processor-config.json"
    overrides = json.loads(sub_text(deploy["ParameterOverrides"]))
    processor_parameters = template("processor")["Parameters"]
    assert set(overrides) <= set(processor_parameters)
    buildspec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    writes_config = [c for c in buildspec["phases"]["post_build"]["commands"] if "processor-config.json" in c]
    assert writes_config and '"CodeBucket"' in writes_config[0] and '"CodeKey"' in writes_config[0]
    # Everything the pipeline does not pass must have a default.
    for name, parameter in processor_parameters.items():
        if name not in overrides and name not in ("CodeBucket", "CodeKey"):
            assert "Default" in parameter, f"processor parameter {name} needs a default"


def test_processor_deploy_role_reaches_only_the_processor_stacks_resources():
    function = sub_text(props("processor", "ProcessorFunction")["FunctionName"])
    assert function == "${Environment}-processor"
    scoped = role_statement("pipeline", "ProcessorDeployRole", "ProcessorFunction")
    assert sub_text(scoped["Resource"]).endswith(f":function:{function}")
    role = role_statement("pipeline", "ProcessorDeployRole", "ProcessorRole")
    assert sub_text(role["Resource"]).endswith(":role/${Environment}/processor/*")
    assert sub_text(props("processor", "ProcessorRole")["Path"]) == "/${Environment}/processor/"
    logs = role_statement("pipeline", "ProcessorDeployRole", "ProcessorLogGroup")
    assert sub_text(logs["Resource"]).endswith(":log-group:/aws/lambda/${Environment}-processor*")
    assert sub_text(props("processor", "ProcessorLogGroup")["LogGroupName"]) == "/aws/lambda/${Environment}-processor"
    alarms = role_statement("pipeline", "ProcessorDeployRole", "ProcessorAlarms")
    assert sub_text(alarms["Resource"]).endswith(":alarm:${Environment}-processor-*")
    for alarm in resources("processor", "AWS::CloudWatch::Alarm").values():
        assert sub_text(alarm["Properties"]["AlarmName"]).startswith("${ProcessorFunction}-")


def test_registry_scans_on_push_keeps_tags_immutable_and_expires_old_images():
    _, repository = the("pipeline", "AWS::ECR::Repository")
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    policy = json.loads(sub_text(repository["LifecyclePolicy"]["LifecyclePolicyText"]).replace("${KeepImages}", "30"))
    assert {r["selection"]["tagStatus"] for r in policy["rules"]} == {"untagged", "any"}
    assert exports("pipeline")["RepositoryUri"] == {"Fn::GetAtt": ["ImageRepository", "RepositoryUri"]}


# ------------------------------------------------------------------------------- buildspec

def test_buildspec_tests_builds_pushes_and_hands_over_artifacts():
    buildspec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    assert str(buildspec["version"]) == "0.2"
    assert str(buildspec["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    pre_build = buildspec["phases"]["pre_build"]["commands"]
    assert "make test" in pre_build
    assert any("docker login" in c for c in pre_build)
    build = "\n".join(buildspec["phases"]["build"]["commands"])
    assert "docker build" in build and "docker push" in build and "$IMAGE_TAG" in build
    assert "make lambda-zip" in build and "$CODE_KEY" in build
    post_build = "\n".join(buildspec["phases"]["post_build"]["commands"])
    assert "imagedefinitions.json" in post_build and "aws cloudformation package" in post_build
    assert set(buildspec["artifacts"]["files"]) == {"imagedefinitions.json", "processor-config.json", "packaged/*.yaml"}
    assert any("IMAGE_TAG=\"${COMMIT_ID:0:12}\"" in c for c in pre_build)


# ------------------------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def test_dockerfile_is_multi_stage_pinned_non_root_with_healthcheck():
    instructions = dockerfile_instructions()
    bases = [args for op, args in instructions if op == "FROM"]
    assert len(bases) == 2, "build stage + runtime stage"
    for base in bases:
        image = base.split()[0]
        assert re.search(r":3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$", image), image
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    final_ops = dict(final)  # last value of each instruction in the runtime stage
    assert final_ops["USER"].split(":")[0] == "10001"
    assert "COPY" in final_ops and "--from=build /opt/venv /opt/venv" in final_ops["COPY"]
    assert final_ops["EXPOSE"] == "8000"
    assert "python" in final_ops["HEALTHCHECK"] and "/healthz" in final_ops["HEALTHCHECK"]
    assert json.loads(final_ops["CMD"]) == ["imageservice", "serve", "--host", "0.0.0.0"]
    build_stage = [args for op, args in instructions[: len(instructions) - len(final)] if op == "RUN"]
    # the locked versions, with their hashes, and then the app alone (nothing resolved on the way)
    assert any("--require-hashes -r requirements-app.lock" in run for run in build_stage)
    assert any("pip install --no-cache-dir --no-deps --no-build-isolation ." in run for run in build_stage)


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    lines = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "application", "requirements-app.lock"}
    for excluded in (".git", ".venv", "data", "test-artifacts"):
        assert excluded in lines


# ------------------------------------------------------------------------------- deploy guide

def test_deploy_guide_documents_every_parameter_and_output():
    guide = (INFRA / "DEPLOY.md").read_text()
    for stack in STACKS:
        assert f"{stack}.yaml" in guide
        for name in template(stack).get("Parameters", {}):
            assert f"`{name}`" in guide, f"DEPLOY.md does not document {stack}.yaml parameter {name}"
        for name in template(stack).get("Outputs", {}):
            assert f"`{name}`" in guide, f"DEPLOY.md does not document {stack}.yaml output {name}"
    assert "python3.12" in guide and "arm64" in guide


# -- the share links' distribution (docs/AWS.md "Share links at the edge") -----------------------

def test_the_share_function_in_the_template_is_the_tested_file():
    """The template inlines the CloudFront Function (CloudFormation takes its code as a string);
    tests/unit/test_cloudfront_function.py runs the file: they must be the same bytes."""
    source = (Path(__file__).resolve().parents[2] / "infrastructure" / "cloudfront" / "accept-class.js").read_text()
    function = props("app", "ShareAcceptClassFunction")
    assert function["FunctionCode"] == source
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0" and function["AutoPublish"] is True


def test_share_links_are_cached_on_path_format_and_accept_class_only_and_nothing_else_is():
    key = props("app", "ShareCachePolicy")["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["x-accept-class"]}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist", "QueryStrings": ["format"]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    origin = props("app", "ShareOriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert origin["CookiesConfig"] == {"CookieBehavior": "none"} and origin["HeadersConfig"]["Headers"] == ["Accept"]
    config = props("app", "ShareDistribution")["DistributionConfig"]
    share = share_behaviours()["/s/*"]
    assert share["CachePolicyId"] == {"Ref": "ShareCachePolicy"}
    assert share["FunctionAssociations"][0]["EventType"] == "viewer-request"
    assert config["DefaultCacheBehavior"]["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled


def share_behaviours() -> dict[str, dict[str, Any]]:
    return {b["PathPattern"]: b for b in props("app", "ShareDistribution")["DistributionConfig"]["CacheBehaviors"]}


def test_the_app_behind_the_share_distribution_is_asked_under_its_own_host_name():
    """CloudFront checks the origin's certificate against the Host it sends: the viewer's Host
    (the distribution's cloudfront.net name) would fail the ALB's certificate, a 502 for all."""
    origin_request_policies = [props("app", "ShareDistribution")["DistributionConfig"]["DefaultCacheBehavior"]
                               ["OriginRequestPolicyId"]] + [b.get("OriginRequestPolicyId") for b in share_behaviours().values()]
    assert origin_request_policies[0] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # managed AllViewerExceptHostHeader
    assert "216adef6-5c7f-47e4-b989-5492eafa07d3" not in origin_request_policies  # managed AllViewer forwards Host
    for policy in resources("app", "AWS::CloudFront::OriginRequestPolicy").values():
        headers = policy["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
        assert headers["HeaderBehavior"] == "whitelist" and "host" not in {h.lower() for h in headers["Headers"]}


def test_the_share_pages_static_files_are_cached_on_their_content_hash_only(app):
    static = share_behaviours()["/static/*"]
    assert static["CachePolicyId"] == {"Ref": "StaticCachePolicy"} and "OriginRequestPolicyId" not in static
    key = props("app", "StaticCachePolicy")["CachePolicyConfig"]
    assert key["MinTTL"] == 0 and key["DefaultTTL"] == 0  # the app's Cache-Control decides, no-cache included
    parameters = key["ParametersInCacheKeyAndForwardedToOrigin"]
    assert parameters["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist", "QueryStrings": ["v"]}
    assert parameters["CookiesConfig"] == {"CookieBehavior": "none"}
    assert parameters["HeadersConfig"] == {"HeaderBehavior": "none"}
    from imageservice.web.pages.views import asset_url

    with app.test_request_context("/"):  # the URLs the share page writes fall under the behaviour, keyed on v
        assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]+", asset_url("app.css"))


def test_the_app_may_invalidate_the_share_distribution_and_no_other():
    statement = role_statement("app", "TaskRole", "InvalidateShareLinks")
    assert statement["Action"] == "cloudfront:CreateInvalidation"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ShareDistribution}"}


def test_an_ended_share_link_the_cdn_kept_raises_an_alarm_at_the_first_failure():
    from imageservice.bootstrap import build_metrics
    from imageservice.metrics import METRICS, NAMESPACE
    from imageservice.settings import Settings

    web = build_metrics(Settings(backend="aws")).service  # the dimension the web tasks' metrics carry
    alarm = alarm_on("app", METRICS["cdn_invalidation_failures"].emf_name)
    assert alarm["Namespace"] == NAMESPACE and alarm["Dimensions"] == [{"Name": "service", "Value": web}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")


def test_what_the_share_distribution_forwards_is_rate_limited_per_viewer_not_per_cloudfront_address():
    """The ALB's per-IP limit would count CloudFront's addresses, a few for a whole edge
    location: one busy share link, or anyone asking for unknown links through the CDN, would get
    every viewer there blocked. The distribution proves its requests with a generated secret."""
    config = props("app", "ShareDistribution")["DistributionConfig"]
    [origin] = config["Origins"]
    sent = {h["HeaderName"].lower(): h["HeaderValue"] for h in origin["OriginCustomHeaders"]}
    secret = "{{resolve:secretsmanager:${ShareOriginSecret}:SecretString}}"
    assert sub_text(sent["x-origin-verify"]) == secret
    generated = props("app", "ShareOriginSecret")
    assert generated["GenerateSecretString"]["PasswordLength"] >= 32 and "KmsKeyId" in generated

    acl = props("app", "WebAcl")
    rules = {r["Name"]: r["Statement"]["RateBasedStatement"] for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]}
    from_the_distribution = {"ByteMatchStatement": {
        "FieldToMatch": {"SingleHeader": {"Name": "x-origin-verify"}}, "PositionalConstraint": "EXACTLY",
        "SearchString": {"Fn::Sub": secret}, "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}
    per_ip, per_viewer = rules["RateLimitPerIp"], rules["RateLimitPerShareViewer"]
    assert per_ip["AggregateKeyType"] == "IP"
    assert per_ip["ScopeDownStatement"] == {"NotStatement": {"Statement": from_the_distribution}}
    assert per_viewer["ScopeDownStatement"] == from_the_distribution
    assert per_viewer["AggregateKeyType"] == "FORWARDED_IP"
    # a header without an address is not counted rather than blocked
    assert per_viewer["ForwardedIPConfig"] == {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "NO_MATCH"}
    assert config["WebACLId"] == {"Fn::If": ["HasShareWebAcl", {"Ref": "ShareWebAclArn"}, {"Ref": "AWS::NoValue"}]}
