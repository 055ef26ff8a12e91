"""Static cross-check of the templates' IAM policies against the code.

Every boto3 operation each role's code makes (found by walking the AST: tests/iam_policies.py)
maps to the IAM action AWS authorizes it with; each must be granted to that role, and each
data action (S3, DynamoDB, SQS, SNS) a role is granted must be needed by its code. The
integration test tests/integration/test_iam_enforced_flow.py runs the flow under the same
policies on a moto server that enforces them.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

pytest.importorskip("cfnlint.decode.cfn_yaml", reason="cfn-lint is not installed (make test installs it)")

import iam_policies  # noqa: E402
from iam_policies import ESM_ACTIONS, Deployment, granted_pairs, role_calls, role_policy  # noqa: E402

ROLES = sorted(iam_policies.ROLES)
# Grants made ahead of the code that uses them, each with its reason (the template says it too).
# Remove an entry when a call uses it (the unused-grant test then covers it like any other).
DECLARED_AHEAD: dict[tuple[str, str, str], str] = {}


def needed(role: str) -> dict[tuple[str, str], set[str]]:
    """(IAM action, resource export) -> where in the code it is needed."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for call in role_calls(role):
        for action in call.actions:
            found[action, call.resource].add(f"{call.where} ({call.operation})")
    if role == "processor":
        for action in ESM_ACTIONS:
            found[action, "QueueArn"].add("Lambda's SQS event source mapping")
    return found


def granted(role: str) -> set[tuple[str, str]]:
    return granted_pairs(role_policy(role), Deployment())


def test_the_code_reading_finds_the_operations_we_know_of():
    """A guard on the AST walk itself: these calls exist, so the walk must see them."""
    app = {(c.where, c.operation) for c in role_calls("app")}
    processor = {(c.where, c.operation) for c in role_calls("processor")}
    assert ("S3BlobStore.presign_upload", "PutObject") in app  # generate_presigned_url("put_object")
    assert ("S3BlobStore.delete_prefix", "ListObjectsV2") in app  # get_paginator
    assert ("SqsJobQueue.send", "SendMessage") in app
    assert ("S3BlobStore.ping", "HeadBucket") in app  # readyz: getattr(components, name).ping()
    assert ("flask_session", "GetItem") in app
    assert ("Catalog.claim", "TransactWriteItems") in processor
    assert ("RecordReader.list", "Query") in app and ("RecordReader.batch_get", "BatchGetItem") in app
    assert ("RecordReader.tally", "Query") in processor  # create -> _usage -> uow.images.tally
    assert "TableArn/index/by_owner_status" in {c.resource for c in role_calls("app") if c.where == "RecordReader.list"}
    assert "dynamodb:DeleteItem" in {a for c in role_calls("processor") if c.where == "Catalog.put" for a in c.actions}
    assert ("S3BlobStore.get", "GetObject") in processor
    assert not {c.operation for c in role_calls("processor")} & {"GeneratePresignedUrl"}
    # A helper object the store hands out makes its calls for the method that built it.
    s3_store = iam_policies.adapter_classes()["S3BlobStore"]
    streamed = {(c.operation, c.actions) for c in s3_store.reachable_calls("open_writer")}
    assert streamed == {("CreateMultipartUpload", ("s3:PutObject",)), ("UploadPart", ("s3:PutObject",)),
                        ("CompleteMultipartUpload", ("s3:PutObject",)), ("PutObject", ("s3:PutObject",)),
                        ("AbortMultipartUpload", ("s3:AbortMultipartUpload",))}


@pytest.mark.parametrize("role", ROLES)
def test_every_action_the_code_needs_is_granted(role):
    grants = granted(role)
    missing = {pair: sorted(where) for pair, where in needed(role).items() if pair not in grants}
    assert not missing, (f"{iam_policies.ROLES[role]} lacks actions its code calls (add them to the template "
                         f"with a comment naming the code): {missing}")


@pytest.mark.parametrize("role", ROLES)
def test_every_granted_data_action_is_used_by_the_code(role):
    ahead = {(action, resource) for (owner, action, resource) in DECLARED_AHEAD if owner == role}
    unused = granted(role) - set(needed(role)) - ahead
    assert not unused, f"{iam_policies.ROLES[role]} grants actions no code of that role calls: {sorted(unused)}"


def test_grants_declared_ahead_are_granted_and_not_yet_used():
    """Once the code calls it, the entry must go (so the grant is checked like the others)."""
    for role, action, resource in DECLARED_AHEAD:
        assert (action, resource) in granted(role), (role, action, resource)
        assert (action, resource) not in needed(role), f"{action} is used now: remove it from DECLARED_AHEAD"


def test_the_worker_command_plays_exactly_the_event_source_mapping():
    """`imageservice worker` stands in for Lambda's ESM against emulators: it must not need
    anything the ESM does not do with the function's role."""
    actions = {a for call in iam_policies.worker_calls() for a in call.actions}
    assert actions and actions <= ESM_ACTIONS, actions - ESM_ACTIONS


def test_every_adapter_operation_belongs_to_some_role():
    """An adapter method that no role's code reaches is either dead or wired through a name
    this check does not know (PORT_ADAPTERS): either way, look."""
    owned = {(c.where, c.operation) for role in ROLES for c in role_calls(role)}
    orphans = sorted({(c.where, c.operation) for c in iam_policies.all_adapter_calls()} - owned)
    known_unreached = {
        # dead_letters(): read by tests and operators (the DLQ is inspected with the console/CLI).
        ("SqsJobQueue.dead_letters", "ReceiveMessage"), ("SqsJobQueue.dead_letter_queue_url", "GetQueueAttributes"),
        ("SqsJobQueue.dead_letter_queue_url", "GetQueueUrl"), ("SqsJobQueue.dead_letters", "GetQueueAttributes"),
        ("SqsJobQueue.dead_letters", "GetQueueUrl"),
        # receive/ack/retry: the local-mode Worker's interface; in aws mode Lambda's ESM does this.
        ("SqsJobQueue.receive", "ReceiveMessage"), ("SqsJobQueue.receive", "SendMessage"),
        ("SqsJobQueue.receive", "DeleteMessage"), ("SqsJobQueue._received_job", "SendMessage"),
        ("SqsJobQueue.ack", "DeleteMessage"), ("SqsJobQueue.retry", "ChangeMessageVisibility"),
        ("SqsJobQueue.send", "SendMessage"), ("SqsJobQueue._delete", "DeleteMessage"),
        ("SqsJobQueue.queue_arn", "GetQueueAttributes"),
    }
    assert set(orphans) <= known_unreached, sorted(set(orphans) - known_unreached)
