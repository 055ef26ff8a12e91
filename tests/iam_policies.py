"""The templates' IAM policies as data, and the AWS operations the code makes, found by reading it.

Used by tests/unit/test_iam_grants.py (static: every call granted, every grant used) and by
tests/integration/test_iam_enforced_flow.py (dynamic: the whole flow on a moto server that
enforces exactly these policies).

- ``role_policy(role, deployment)`` resolves a role's inline policies from the parsed template
  (Ref, GetAtt, Sub, ImportValue, If, Join, conditions) into plain JSON with the ARNs of a
  concrete deployment (moto's resources in the integration test).
- ``code_actions()`` walks the code's AST: which port methods each role's code calls
  (service and web for the app; the pipeline, the event processor and the Lambda handler for
  the processor), which boto3 operations those adapter methods make (transitively, through
  ``self._helper`` calls and string operation names such as ``get_paginator("list_objects_v2")``),
  and maps each operation to the IAM action AWS authorizes it with.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infrastructure"
PACKAGE = ROOT / "application" / "imageservice"
AWS_ADAPTERS = PACKAGE / "adapters" / "aws"
DYNAMODB_ADAPTERS = PACKAGE / "adapters" / "dynamodb"
# The catalog's use cases (imageservice/catalog/): each reaches DynamoDB through the unit of
# work's repositories, by these attribute names, implemented by these classes.
CATALOG = PACKAGE / "catalog"
REPOSITORIES = {"images": "DynamoImages", "counters": "DynamoCounters", "idempotency": "DynamoIdempotency",
                "tokens": "DynamoTokens", "links": "DynamoDocuments", "batches": "DynamoDocuments"}

# role name -> (stack, logical id of the AWS::IAM::Role)
ROLES = {"app": ("app", "TaskRole"), "processor": ("processor", "ProcessorRole")}
# Stack parameters that name other stacks, with their defaults (imports resolve through them).
STACK_DEFAULTS = {"network": "imageservice-network", "data": "imageservice-data", "pipeline": "imageservice-pipeline"}
DATA_SERVICES = ("s3", "dynamodb", "sqs", "sns", "cloudfront")

# Attribute names under which adapters hold their boto3 client -> the service.
CLIENT_ATTRIBUTES = {"s3": "s3", "db": "dynamodb", "dynamodb": "dynamodb", "sqs": "sqs", "sns": "sns",
                     "cloudfront": "cloudfront"}
# Attribute names under which the app and the pipeline hold ports -> the aws adapter class.
PORT_ADAPTERS = {"blobs": "S3BlobStore", "catalog": "Catalog", "queue": "SqsJobQueue",
                 "topic": "SnsEventTopic", "edge_cache": "CloudFrontEdgeCache"}
# Modules of adapters/aws that no deployed role runs: `imageservice setup` (and the template
# reader behind it) is for emulators and development (CloudFormation makes the resources in AWS).
# The aws worker command (entrypoints/sqs_worker.py) plays Lambda's SQS event source mapping
# (ESM_ACTIONS below) against emulators.
SQS_WORKER = PACKAGE / "entrypoints" / "sqs_worker.py"
NOT_RUN_BY_A_ROLE = {"setup.py", "template.py", "backfill.py"}

# What each role's own code is (paths relative to the repository).
ROLE_CODE = {
    "app": ["application/imageservice/service/*.py", "application/imageservice/admission.py",
            "application/imageservice/removal.py", "application/imageservice/web/**/*.py"],
    "processor": ["application/imageservice/core/pipeline.py", "application/imageservice/pipeline.py",
                  "application/imageservice/entrypoints/aws_processor.py", "lambda/handler.py",
                  "application/imageservice/notifications.py", "application/imageservice/removal.py",
                  "application/imageservice/batching.py"],
}
# Lambda's event source mapping polls the queue with the function's role
# (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions).
ESM_ACTIONS = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"})
# Flask-Session's DynamoDB backend (the app's server-side sessions): read from its source below.
FLASK_SESSION_MODULE = "flask_session.dynamodb.dynamodb"
# The resource (the data stack's export) each adapter's calls act on.
RESOURCE_OF = {"S3BlobStore": "BucketArn", "RecordReader": "TableArn", "Catalog": "TableArn", "SqsJobQueue": "QueueArn",
               "SqsLambdaWorker": "QueueArn", "flask_session": "SessionTableArn",
               "SnsEventTopic": "ImageEventsTopicArn", "CloudFrontEdgeCache": "ShareDistributionArn",
               "MultipartSink": "BucketArn"}

# Operations AWS authorizes under another action than "<service>:<Operation>".
ACTION_OF_OPERATION = {
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    # A multipart upload (BlobStore.open_writer) is authorized as PutObject, except its abort.
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    ("dynamodb", "TransactGetItems"): ("dynamodb:GetItem",),
}
# Operations that may read an index of a table (authorized on "<table arn>/index/<name>").
INDEX_OPERATIONS = frozenset({"Query", "Scan"})
# TransactWriteItems is authorized item by item: its actions come from the item kinds the
# calling function builds (dict keys Put / Update / Delete / ConditionCheck).
TRANSACT_ITEM_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                         "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem"}


# ------------------------------------------------------------------ templates -> policies

@functools.cache
def template(stack: str) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(INFRA / f"{stack}.yaml"))


@dataclass
class Deployment:
    """The concrete names a template's references resolve to."""

    bucket: str = "images-bucket"
    table: str = "images-table"
    session_table: str = "sessions-table"
    queue: str = "jobs"
    dead_letter_queue: str = "jobs-dlq"
    topic: str = "image-events"
    region: str = "us-east-1"
    account: str = "123456789012"
    environment: str = "test"
    share_distribution: str = "E2SHARELINKS"  # the app stack's CloudFront distribution's id
    parameters: dict[str, Any] = field(default_factory=dict)

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"

    def exports(self) -> dict[str, str]:
        """Every export another stack imports, by its full name."""
        data = {
            "BucketName": self.bucket, "BucketArn": f"arn:aws:s3:::{self.bucket}",
            "TableName": self.table, "TableArn": self.arn("dynamodb", f"table/{self.table}"),
            "SessionTableName": self.session_table,
            "SessionTableArn": self.arn("dynamodb", f"table/{self.session_table}"),
            "QueueUrl": f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.queue}",
            "QueueArn": self.arn("sqs", self.queue),
            "DeadLetterQueueUrl": f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.dead_letter_queue}",
            "DeadLetterQueueArn": self.arn("sqs", self.dead_letter_queue),
            "ImageEventsTopicArn": self.arn("sns", self.topic),
            # Not an export: the app stack's own distribution, named here so grants can be read.
            "ShareDistributionArn": self.arn("cloudfront", f"distribution/{self.share_distribution}", region=False),
            "AlarmTopicArn": self.arn("sns", "alarms"),
            "ProcessorTimeoutSeconds": "120", "MaxReceiveCount": "5", "MaxUploadBytes": "52428800",
            "QuarantineDays": "30", "DomainName": "images.example.com", "PublicUrl": "https://images.example.com",
        }
        network = {
            "Environment": self.environment, "EnvironmentKeyArn": self.arn("kms", "key/environment"),
            "VpcId": "vpc-1", "VpcCidr": "10.0.0.0/16", "AccessLogsBucketName": "logs",
        }
        pipeline = {"RepositoryArn": self.arn("ecr", "repository/web"), "RepositoryUri": "repo/web"}
        found = {}
        for stack, values in (("data", data), ("network", network), ("pipeline", pipeline)):
            found.update({f"{STACK_DEFAULTS[stack]}-{name}": value for name, value in values.items()})
        return found


class Resolver:
    """Evaluates CloudFormation intrinsic functions of one template for one deployment."""

    NO_VALUE = object()

    def __init__(self, stack: str, deployment: Deployment):
        self.template = template(stack)
        self.deployment = deployment
        self.parameters = {name: spec.get("Default") for name, spec in self.template.get("Parameters", {}).items()}
        self.parameters.update(deployment.parameters)
        self.pseudo = {"AWS::Region": deployment.region, "AWS::AccountId": deployment.account,
                       "AWS::Partition": "aws", "AWS::StackName": stack, "AWS::URLSuffix": "amazonaws.com"}
        self.exports = deployment.exports()

    def resource_arn(self, logical_id: str) -> str:
        if self.template["Resources"][logical_id]["Type"] == "AWS::CloudFront::Distribution":
            return self.deployment.share_distribution  # its Ref is the distribution's id
        kind = self.template["Resources"][logical_id]["Type"].split("::")[1].lower()
        return self.deployment.arn(kind, f"{self.deployment.environment}/{logical_id}")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not self.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return self.NO_VALUE
                if arg in self.pseudo:
                    return self.pseudo[arg]
                if arg in self.parameters:
                    return self.parameters[arg]
                return self.resource_arn(arg)
            if key == "Fn::GetAtt":
                logical_id = arg[0] if isinstance(arg, list) else arg.split(".")[0]
                return self.resource_arn(logical_id)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                values = {name: self.value(v) for name, v in variables.items()}
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_variable(m.group(1), values)), text)
            if key == "Fn::ImportValue":
                name = self.value(arg)
                if name not in self.exports:
                    raise KeyError(f"no export {name} in the test deployment (add it to Deployment.exports)")
                return self.exports[name]
            if key == "Fn::If":
                chosen = arg[1] if self.condition(arg[0]) else arg[2]
                return self.value(chosen)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
        resolved = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not self.NO_VALUE}

    def _sub_variable(self, name: str, values: dict[str, Any]) -> Any:
        if name in values:
            return values[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        logical_id, _, _ = name.partition(".")
        return self.resource_arn(logical_id)


def role_policy(role: str, deployment: Deployment | None = None) -> dict[str, Any]:
    """All inline policies of ``role`` as one resolved policy document."""
    stack, logical_id = ROLES[role]
    resolver = Resolver(stack, deployment or Deployment())
    properties = template(stack)["Resources"][logical_id]["Properties"]
    assert not properties.get("ManagedPolicyArns"), f"{logical_id}: managed policies are not read here"
    found = []
    for policy in properties.get("Policies", []):
        document = resolver.value(policy["PolicyDocument"])
        found.extend(_as_list(document["Statement"]))
    return {"Version": "2012-10-17", "Statement": found}


def granted_actions(policy: dict[str, Any], services: tuple[str, ...] = DATA_SERVICES) -> set[str]:
    actions = set()
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            actions.update(a for a in _as_list(statement["Action"]) if a.split(":")[0] in services)
    return actions


def granted_pairs(policy: dict[str, Any], deployment: Deployment,
                  services: tuple[str, ...] = DATA_SERVICES) -> set[tuple[str, str]]:
    """(action, export name of the resource) for every data action granted: an object ARN
    ``<bucket arn>/prefix/*`` counts as the bucket (prefixes are the integration test's job)."""
    by_arn = {value: name for name, value in deployment.exports().items() if value.startswith("arn:")}
    pairs = set()
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        for resource in _as_list(statement["Resource"]):
            base = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else resource
            table, _, index = base.partition("/index/")
            known = f"{by_arn[table]}/index/{index}" if index and table in by_arn else by_arn.get(base, resource)
            name = known.rsplit("-", 1)[-1]  # an index of a table: "TableArn/index/<name>"
            pairs.update((a, name) for a in _as_list(statement["Action"]) if a.split(":")[0] in services)
    return pairs


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ code -> actions

@functools.cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> operation name, from botocore's service model."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    return ACTION_OF_OPERATION.get((service, operation), (f"{service}:{operation}",))


@dataclass(frozen=True)
class Call:
    """One AWS operation found in the code: where, which, and the IAM actions it needs."""

    where: str  # "Catalog.claim", "RecordReader.list" or a module path
    service: str
    operation: str
    actions: tuple[str, ...]
    index: str | None = None  # a DynamoDB Query or Scan of this index of the table

    @property
    def resource(self) -> str:
        """The data stack export naming what the call acts on (BucketArn, TableArn...), with
        ``/index/<name>`` for an index of a table (its ARN is the table's with that suffix)."""
        owner = self.where.split(".")[0]
        if owner not in RESOURCE_OF:
            raise KeyError(f"{owner}: add the resource it acts on to iam_policies.RESOURCE_OF")
        return RESOURCE_OF[owner] + (f"/index/{self.index}" if self.index else "")


class AdapterClass:
    """Methods of one adapter class: the operations each makes and the self-methods it calls."""

    def __init__(self, node: ast.ClassDef, module: str, tree: ast.Module | None = None):
        self.name, self.module, self.tree = node.name, module, tree
        self.methods = {n.name: n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        services = {CLIENT_ATTRIBUTES[a.attr] for a in ast.walk(node) if isinstance(a, ast.Attribute)
                    and isinstance(a.value, ast.Name) and a.value.id == "self" and a.attr in CLIENT_ATTRIBUTES}
        self.services = services

    def direct_calls(self, method: str) -> list[Call]:
        node = self.methods[method]
        calls = []
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Call):
                continue
            func = sub.func
            # self.<client>.<operation>(...)
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute)
                    and isinstance(func.value.value, ast.Name) and func.value.value.id == "self"
                    and func.value.attr in CLIENT_ATTRIBUTES):
                service = CLIENT_ATTRIBUTES[func.value.attr]
                if func.attr in _operations(service):
                    calls.append(self._call(method, service, func.attr, node))
            # get_paginator("list_objects_v2"), generate_presigned_url("put_object"),
            # self._pages("query", ...): an operation named by a string argument
            for arg in sub.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    for service in self.services:
                        if arg.value in _operations(service):
                            calls.append(self._call(method, service, arg.value, node))
        # A Query or Scan in a method that names an index (an "IndexName" entry) may read that
        # index as well as the table: both count.
        calls += [dataclasses.replace(call, index=index) for call in list(calls)
                  if call.operation in INDEX_OPERATIONS for index in self._index_names(node)]
        return calls

    def _index_names(self, node: ast.AST) -> set[str]:
        """The values of the "IndexName" entries of dicts in ``node``: strings, or names of
        module-level string constants."""
        constants = {**_adapter_constants(),
                     **{target.id: assign.value.value for assign in (self.tree.body if self.tree else [])
                        if isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Constant)
                        for target in assign.targets if isinstance(target, ast.Name)}}
        found = set()
        for d in ast.walk(node):
            if isinstance(d, ast.Dict):
                for key, value in zip(d.keys, d.values):
                    if isinstance(key, ast.Constant) and key.value == "IndexName":
                        found.add(value.value if isinstance(value, ast.Constant) else constants[value.id])
        return found

    def _call(self, method: str, service: str, snake: str, node: ast.AST) -> Call:
        operation = _operations(service)[snake]
        if (service, operation) == ("dynamodb", "TransactWriteItems"):
            # Item kinds built in the calling method; when it gets them from helpers, the
            # whole module's (a superset: an unused grant then shows up as not flagged).
            kinds = _transact_kinds(node) or _transact_kinds(self.tree) if self.tree else _transact_kinds(node)
            actions = tuple(sorted(TRANSACT_ITEM_ACTIONS[k] for k in kinds))
        else:
            actions = iam_actions(service, operation)
        return Call(f"{self.name}.{method}", service, operation, actions)

    def self_calls(self, method: str) -> set[str]:
        return {sub.attr for sub in ast.walk(self.methods[method]) if isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name) and sub.value.id == "self" and sub.attr in self.methods}

    def built_helpers(self, method: str) -> list[AdapterClass]:
        """Other adapter classes the method instantiates: a helper object it hands out (the
        S3 store's MultipartSink) makes its calls on the method's behalf."""
        helpers = adapter_classes()
        return [helpers[sub.func.id] for sub in ast.walk(self.methods[method]) if isinstance(sub, ast.Call)
                and isinstance(sub.func, ast.Name) and sub.func.id in helpers and sub.func.id != self.name]

    def reachable_calls(self, method: str) -> list[Call]:
        seen, todo, calls = set(), [method], []
        while todo:
            current = todo.pop()
            if current in seen or current not in self.methods:
                continue
            seen.add(current)
            calls.extend(self.direct_calls(current))
            todo.extend(self.self_calls(current))
            for helper in self.built_helpers(current):
                calls.extend(call for name in helper.methods for call in helper.reachable_calls(name))
        return calls


@functools.cache
def _adapter_constants() -> dict[str, Any]:
    """Module-level constants of the adapter modules (an index name imported from a sibling)."""
    return {target.id: assign.value.value
            for path in [*AWS_ADAPTERS.glob("*.py"), *DYNAMODB_ADAPTERS.glob("*.py")]
            for assign in ast.parse(path.read_text()).body
            if isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Constant)
            for target in assign.targets if isinstance(target, ast.Name)}


def _transact_kinds(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {k.value for d in ast.walk(node) if isinstance(d, ast.Dict)
            for k in d.keys if isinstance(k, ast.Constant) and k.value in TRANSACT_ITEM_ACTIONS}


@functools.cache
def adapter_classes() -> dict[str, AdapterClass]:
    found = {}
    for path in sorted([*AWS_ADAPTERS.glob("*.py"), *DYNAMODB_ADAPTERS.glob("*.py")]):
        if path.name in NOT_RUN_BY_A_ROLE:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                adapter = AdapterClass(node, path.name, tree)
                if adapter.services:
                    found[node.name] = adapter
    return found


def _role_files(role: str) -> Iterator[Path]:
    for pattern in ROLE_CODE[role]:
        yield from sorted(ROOT.glob(pattern))


# Modules whose module-level functions take ports as arguments (``remove_image_objects(blobs,
# record)``): a role whose code calls such a function by name uses the ports it uses.
SHARED_FUNCTION_MODULES = ["application/imageservice/pipeline.py"]


def _port_uses(node: ast.AST, named_ports: set[str]) -> set[tuple[str, str]]:
    used = set()
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Attribute):
            continue
        if isinstance(sub.value, ast.Attribute) and sub.value.attr in PORT_ADAPTERS:
            used.add((sub.value.attr, sub.attr))  # self.blobs.put
        elif isinstance(sub.value, ast.Name) and sub.value.id in PORT_ADAPTERS:
            used.add((sub.value.id, sub.attr))  # blobs.put (a function's parameter)
        elif (isinstance(sub.value, ast.Call) and isinstance(sub.value.func, ast.Name)
              and sub.value.func.id == "getattr"):
            used.update((port, sub.attr) for port in named_ports)
    return used


def shared_functions() -> dict[str, ast.FunctionDef]:
    found = {}
    for pattern in SHARED_FUNCTION_MODULES:
        for path in ROOT.glob(pattern):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef):
                    found[node.name] = node
    return found


def port_methods(paths: list[Path]) -> set[tuple[str, str]]:
    """(port, method) pairs the code at ``paths`` uses: ``<x>.blobs.put`` (called or passed
    on as a bound method), and ``getattr(components, name).ping()`` with ``name`` one of the
    port names written in the same module."""
    used = set()
    shared = shared_functions()
    for path in paths:
        tree = ast.parse(path.read_text())
        named_ports = {c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and c.value in PORT_ADAPTERS}
        used |= _port_uses(tree, named_ports)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in shared:
                used |= _port_uses(shared[call.func.id], set())
    return used


def flask_session_calls() -> list[Call]:
    """The DynamoDB operations Flask-Session's DynamoDB backend makes (read from its source)."""
    import importlib

    module = importlib.import_module(FLASK_SESSION_MODULE)
    tree = ast.parse(Path(module.__file__).read_text())
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            snake = node.func.attr
            # get_waiter("table_exists") (DescribeTable) and update_time_to_live run only after
            # a CreateTable that succeeded, which never happens on the deployed table.
            if snake in _operations("dynamodb") and snake not in ("get_waiter", "update_time_to_live"):
                calls.append(Call("flask_session", "dynamodb", _operations("dynamodb")[snake],
                                  iam_actions("dynamodb", _operations("dynamodb")[snake])))
    return calls


@functools.cache
def _classes_in(folder: Path) -> dict[str, tuple[ast.ClassDef, ast.Module]]:
    found = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        found.update({node.name: (node, tree) for node in tree.body if isinstance(node, ast.ClassDef)})
    return found


def _methods(name: str, classes: dict[str, tuple[ast.ClassDef, ast.Module]]) -> dict[str, tuple[ast.AST, ast.Module]]:
    """A class's methods, each with its module, with those of its bases in the same folder
    (the nearer wins)."""
    node, tree = classes[name]
    methods: dict[str, tuple[ast.AST, ast.Module]] = {}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            methods.update(_methods(base.id, classes))
    methods.update({n.name: (n, tree) for n in node.body if isinstance(n, ast.FunctionDef)})
    return methods


@functools.cache
def _catalog_functions() -> dict[str, ast.FunctionDef]:
    return {n.name: n for path in sorted(CATALOG.glob("*.py")) for n in ast.parse(path.read_text()).body
            if isinstance(n, ast.FunctionDef)}


def _module_functions(node: ast.AST) -> list[ast.AST]:
    """``node`` and the module-level functions of the catalog it calls by name, transitively."""
    functions = _catalog_functions()
    seen, todo = [], [node]
    while todo:
        current = todo.pop()
        if any(current is done for done in seen):
            continue
        seen.append(current)
        todo.extend(functions[c.func.id] for c in ast.walk(current)
                    if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in functions)
    return seen


@functools.cache
def _repository_calls(repository: str, method: str) -> tuple[list[Call], set[str]]:
    """What one DynamoDB repository method does: the reader calls it makes (``self._reader.x``),
    and the kinds of the writes it keeps for the commit (``self._uow.write("Put", ...)``)."""
    classes = _classes_in(DYNAMODB_ADAPTERS)
    methods = _methods(REPOSITORIES[repository], classes)
    reader = adapter_classes()["RecordReader"]
    calls, kinds, seen, todo = [], set(), set(), [method]
    while todo:
        current = todo.pop()
        if current in seen or current not in methods:
            continue
        seen.add(current)
        for sub in ast.walk(methods[current][0]):
            if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)):
                continue
            owner = sub.func.value
            if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self":
                if owner.attr == "_reader":
                    calls.extend(reader.reachable_calls(sub.func.attr))
                elif owner.attr == "_uow" and sub.func.attr == "write" and isinstance(sub.args[0], ast.Constant):
                    kinds.add(sub.args[0].value)
            elif isinstance(owner, ast.Name) and owner.id == "self":
                todo.append(sub.func.attr)
    return calls, kinds


@functools.cache
def catalog_calls(method: str) -> list[Call]:
    """The operations the catalog's use case ``method`` makes in aws mode: the reads of the
    repositories it uses (``uow.images.get``, ``self.read().images.list``), and one
    TransactWriteItems authorized by the kinds of the writes those repositories keep."""
    if method == "ping":
        return adapter_classes()["RecordReader"].reachable_calls("ping")
    methods = _methods("Catalog", _classes_in(CATALOG))
    if method not in methods:
        return []
    calls, kinds = [], set()
    for node in _module_functions(methods[method][0]):
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute)
                    and sub.value.attr in REPOSITORIES):
                found, written = _repository_calls(sub.value.attr, sub.attr)
                calls.extend(found)
                kinds |= written
    if kinds:
        calls.append(Call(f"Catalog.{method}", "dynamodb", "TransactWriteItems",
                          tuple(sorted(TRANSACT_ITEM_ACTIONS[k] for k in kinds))))
    return calls


@functools.cache
def role_calls(role: str) -> tuple[Call, ...]:
    """Every AWS operation ``role``'s code makes, with where it is made."""
    classes = adapter_classes()
    calls = []
    for port, method in sorted(port_methods(list(_role_files(role)))):
        if port == "catalog":
            calls.extend(catalog_calls(method))
            continue
        adapter = classes.get(PORT_ADAPTERS[port])
        if adapter is not None and method in adapter.methods:
            calls.extend(adapter.reachable_calls(method))
    if role == "app":
        calls.extend(flask_session_calls())
    return tuple(calls)


def all_adapter_calls() -> list[Call]:
    """Every operation any public method of an adapter class makes (what some role must own)."""
    calls = []
    for adapter in adapter_classes().values():
        for method in adapter.methods:
            if not method.startswith("_"):
                calls.extend(adapter.reachable_calls(method))
    return calls


def worker_calls() -> list[Call]:
    """What ``imageservice worker`` (aws mode) itself calls, in the place of Lambda's ESM."""
    tree = ast.parse(SQS_WORKER.read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SqsLambdaWorker"]
    calls = []
    for sub in ast.walk(node):
        if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                and isinstance(sub.func.value, ast.Attribute) and sub.func.value.attr == "sqs"
                and sub.func.attr in _operations("sqs")):
            operation = _operations("sqs")[sub.func.attr]
            calls.append(Call("SqsLambdaWorker", "sqs", operation, iam_actions("sqs", operation)))
        elif (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
              and isinstance(sub.func.value, ast.Attribute) and sub.func.value.attr == "queue"):
            calls.extend(adapter_classes()["SqsJobQueue"].reachable_calls(sub.func.attr))
    return calls


def dump(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=1, sort_keys=True)


# ------------------------------------------------------------------ moto's view of a policy
# moto (5.x) enforces IAM with a few known differences from AWS; the integration test hands
# moto this translation of the real policy and states each difference:
# - DynamoDB, SNS and CloudFront requests are authorized against the resource "*" (moto
#   determines no resource for them), so a statement naming a table, topic or distribution ARN
#   would never match: their
#   resources become "*" here, and the per-table limits are checked with moto's own policy
#   evaluator on the real ARNs instead (see the test);
# - some operations are authorized under their operation name, not the IAM action AWS uses;
# - DeleteObjects is authorized once, on the bucket ARN, as "s3:DeleteObjects" (moto 5.2; older
#   moto: s3:DeleteObject), where AWS checks s3:DeleteObject on each key: a role allowed to
#   delete objects under some prefixes gets both names on the bucket ARN too;
# - no condition of an identity policy is evaluated (a conditional statement would allow
#   unconditionally), so statements with a Condition are left out: stricter than AWS. The
#   flow then shows it needs none of them (the processor's DeleteItem of tag items, allowed
#   only under dynamodb:LeadingKeys "tag#*", and the KMS statements, which nothing exercises).
MOTO_RESOURCELESS_SERVICES = ("dynamodb", "sns", "cloudfront")
MOTO_ACTION_ALIASES = {
    # moto 5.2 authorizes an S3 call by its operation name (core/authorization.py passes
    # _get_action(), not s3/responses.py's ACTION_MAP entry), so it asks for actions IAM does
    # not have: "s3:HeadBucket" and "s3:ListObjectsV2" where AWS asks for s3:ListBucket,
    # "s3:HeadObject" where AWS asks for s3:GetObject. Each alias grants the operation exactly
    # where AWS's action is granted; test_moto_authorizes_s3_calls_by_operation_name pins the gap.
    "s3:ListBucket": ("s3:HeadBucket", "s3:ListObjectsV2"),
    "s3:GetObject": ("s3:HeadObject",),
    "sqs:DeleteMessage": ("sqs:DeleteMessageBatch",),
    "sqs:SendMessage": ("sqs:SendMessageBatch",),
    "sqs:ChangeMessageVisibility": ("sqs:ChangeMessageVisibilityBatch",),
    # AWS authorizes each item of a TransactWriteItems (the static check above does so); moto
    # asks for the operation itself. Every unit of work of the catalog puts an item.
    "dynamodb:PutItem": ("dynamodb:TransactWriteItems",),
}


def moto_view(policy: dict[str, Any]) -> dict[str, Any]:
    statements = []
    for statement in policy["Statement"]:
        if "Condition" in statement:
            continue
        statement = dict(statement)
        actions = _as_list(statement["Action"])
        statement["Action"] = sorted({*actions, *(a for x in actions for a in MOTO_ACTION_ALIASES.get(x, ()))})
        if all(a.split(":")[0] in MOTO_RESOURCELESS_SERVICES for a in actions):
            statement["Resource"] = "*"
        statements.append(statement)
        if "s3:DeleteObject" in actions:
            buckets = sorted({r.split("/", 1)[0] for r in _as_list(statement["Resource"]) if r.startswith("arn:aws:s3:::")})
            statements.append({"Effect": "Allow", "Action": ["s3:DeleteObject", "s3:DeleteObjects"], "Resource": buckets})
    return {"Version": policy["Version"], "Statement": statements}
