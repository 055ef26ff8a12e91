"""The data template (``infrastructure/data.yaml``) read as the resources ``imageservice setup``
makes: the bucket's lifecycle rules, CORS and event prefixes, the tables' keys, indexes and TTL
attributes, and the dead-letter queue's retention are defined there once, for CloudFormation and
for setup alike (docs/DESIGN.md "One definition of each fact").

Only what setup needs is resolved: ``Ref`` to a parameter (its value from the settings, else its
default), ``Fn::If`` on a condition of ``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``, and
``AWS::NoValue``. Anything else stays as written.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ENV = "IMAGESERVICE_DATA_TEMPLATE"
NO_VALUE = object()


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags read as their long form (``!Ref x`` -> ``{"Ref": x}``)."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


def template_path() -> Path:
    """IMAGESERVICE_DATA_TEMPLATE, else the checkout's ``infrastructure/data.yaml``."""
    configured = os.environ.get(TEMPLATE_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[4] / "infrastructure" / "data.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"the data template is not at {path}: run setup from a checkout, or set {TEMPLATE_ENV}")
    return path


@cache
def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


class DataTemplate:
    def __init__(self, document: dict, parameters: dict[str, Any] | None = None):
        """``parameters``: values that override the template's defaults (by parameter name)."""
        self.document = document
        defaults = {name: spec.get("Default") for name, spec in document.get("Parameters", {}).items()}
        self.parameters = {**defaults, **(parameters or {})}

    @classmethod
    def load(cls, parameters: dict[str, Any] | None = None) -> "DataTemplate":
        return cls(_load(template_path()), parameters)

    def properties(self, resource: str) -> dict:
        return self.resolve(self.document["Resources"][resource]["Properties"])

    # -- intrinsic functions -------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if list(value) == ["Ref"]:
            name = value["Ref"]
            if name == "AWS::NoValue":
                return NO_VALUE
            return self.parameters[name] if name in self.parameters else value
        if list(value) == ["Fn::If"]:
            condition, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.condition(condition) else when_false)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.document["Conditions"][name]))

    def _evaluate(self, expression: Any) -> Any:
        if not isinstance(expression, dict):
            return expression
        (function, argument), = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self._evaluate(self.resolve(a)) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._evaluate(argument[0])
        if function == "Fn::And":
            return all(self._evaluate(a) for a in argument)
        if function == "Fn::Or":
            return any(self._evaluate(a) for a in argument)
        return self.resolve(expression)

    # -- what setup makes ------------------------------------------------------------------------

    def lifecycle_rules(self) -> list[dict]:
        """The bucket's lifecycle rules in the S3 API's shape."""
        return [_s3_rule(rule) for rule in self.properties("ImagesBucket")["LifecycleConfiguration"]["Rules"]]

    def cors_rules(self, origin: str) -> list[dict]:
        """The bucket's CORS rules in the S3 API's shape, allowing ``origin`` (the template names
        the deployed domain)."""
        return [{"ID": rule["Id"], "AllowedOrigins": [origin], "AllowedMethods": rule["AllowedMethods"],
                 "AllowedHeaders": rule["AllowedHeaders"], "ExposeHeaders": rule["ExposedHeaders"],
                 "MaxAgeSeconds": rule["MaxAge"]}
                for rule in self.properties("ImagesBucket")["CorsConfiguration"]["CorsRules"]]

    def event_prefixes(self) -> list[str]:
        """The key prefixes whose new objects are sent to the jobs queue."""
        return [rule["Value"] for queue in self.properties("ImagesBucket")["NotificationConfiguration"]
                ["QueueConfigurations"] for rule in queue["Filter"]["S3Key"]["Rules"] if rule["Name"] == "prefix"]

    def table(self, resource: str) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]], str]:
        """A table's key schema, its global indexes (name -> key schema) and its TTL attribute."""
        table = self.properties(resource)
        keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
        indexes = {index["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
                   for index in table.get("GlobalSecondaryIndexes", [])}
        return keys, indexes, table["TimeToLiveSpecification"]["AttributeName"]

    def dead_letter_retention(self) -> int:
        return int(self.properties("JobsDeadLetterQueue")["MessageRetentionPeriod"])


def _s3_rule(rule: dict) -> dict:
    """One lifecycle rule from CloudFormation's shape to PutBucketLifecycleConfiguration's."""
    s3: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if rule.get("ExpiredObjectDeleteMarker"):
        expiration["ExpiredObjectDeleteMarker"] = True
    if expiration:
        s3["Expiration"] = expiration
    if "NoncurrentVersionExpiration" in rule:
        s3["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        s3["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return s3
