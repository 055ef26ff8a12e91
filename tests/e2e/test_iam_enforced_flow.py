"""The whole aws-mode flow under the templates' own IAM policies, on a moto server enforcing them.

The Fargate task role's and the Lambda role's policies are resolved from the parsed templates
(tests/iam_policies.py) to this moto server's ARNs; one IAM user per role gets its role's
policy; then moto starts checking every S3, DynamoDB and SQS call (``/moto-api/reset-auth``
with 0, the runtime form of ``INITIAL_NO_AUTH_ACTION_COUNT``). ``imageservice serve`` runs with
the app's keys, ``imageservice worker`` (Lambda's SQS integration driving the Lambda's event
processor) with the processor's, ``token create`` and ``sweep`` with the app's. Upload,
processing, list, convert, download, delete, a browser-like session workspace and the sweep
must all succeed; then what each role must not do is shown to be denied.

Known gaps of moto's enforcement (moto 5.x, moto/iam/access_control.py and moto/core/
authorization.py), and what this test does about each:

- DynamoDB (and SNS) calls are authorized against the resource ``*``: actions are checked,
  tables are not. The users get the policy with DynamoDB resources widened to ``*``
  (iam_policies.moto_view); which table each role may touch is checked with moto's own policy
  evaluator on the real ARNs (``allowed_by_template``).
- Presigned-URL requests fail under enforcement (moto reads the Authorization header, which
  such requests do not have). A presigned URL is authorized as its signer's request, so the
  test checks the URL names the app's access key and then makes the same request (same key,
  content type and bytes) with the app's credentials.
- S3 calls are authorized by their operation name (moto 5.2): "s3:HeadObject",
  "s3:ListObjectsV2", "s3:HeadBucket", "s3:DeleteObjects", where AWS asks for s3:GetObject,
  s3:ListBucket, s3:ListBucket and s3:DeleteObject per key. iam_policies.moto_view grants each
  name exactly where AWS's action is granted (DeleteObjects on the bucket ARN: per-key delete
  limits are not enforced); test_moto_authorizes_s3_calls_by_operation_name fails when a moto
  upgrade closes the gap, so the aliases cannot silently outlive it.
- Conditions are evaluated only for trust policies (no condition keys reach identity
  policies): moto would allow a conditional statement unconditionally, so the users' policies
  leave such statements out (iam_policies.moto_view), which is stricter than AWS. The one data
  statement with a condition, the processor's DeleteItem of tag items (dynamodb:LeadingKeys
  ``tag#*``), is thus not needed by this flow, and deleting a record stays denied; the unit
  test of the templates checks the condition itself. KMS, CloudWatch Logs and Secrets Manager
  statements are not exercised (nothing here calls those services).
- Resource-based policies (the bucket policy, the queue policy) are not evaluated.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
import zipfile
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicy, PermissionResult

import imagefactory
import iam_policies
from aws_fixtures import ACCOUNT, AWS_TEST_ENV, REGION, make_share_distribution, unique_names
from iam_policies import Deployment, moto_view, role_policy
from servers import ServerProcess, free_port, imageservice, run_cli, service_env, wait_until

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("cfnlint") is None, reason="cfn-lint is not installed")

WAIT_SECONDS = 30
UPLOAD_URL_TTL = 4  # seconds: an unused ticket is abandoned soon enough for the sweep to find it


def client(endpoint: str, service: str, keys: dict[str, str]):
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"})
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=config,
                        aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])


def denied(call) -> bool:
    try:
        call()
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        code = exc.response["Error"]["Code"]
        return status == 403 or code in ("AccessDenied", "AccessDeniedException")
    return False


def allowed_by_template(role: str, deployment: Deployment, action: str, resource: str) -> bool:
    """moto's own policy evaluator on the real (unwidened) policy and ARN."""
    result = IAMPolicy(json.dumps(role_policy(role, deployment))).is_action_permitted(action, resource)
    return result == PermissionResult.PERMITTED


class EnforcedDeployment:
    def __init__(self, root):
        self.root = root
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.moto = ServerProcess([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  {**os.environ, **AWS_TEST_ENV}, root / "moto.log",
                                  ready_url=f"{self.endpoint}/moto-api/").start()
        self.names = unique_names(self.endpoint)
        self.deployment = Deployment(
            bucket=self.names.bucket, table=self.names.table, session_table=self.names.session_table,
            queue=self.names.queue_url.rsplit("/", 1)[1], dead_letter_queue=self.names.dead_letter_queue_url.rsplit("/", 1)[1],
            region=REGION, account=ACCOUNT,
        )
        self.processes: list[ServerProcess] = []
        self.keys: dict[str, dict[str, str]] = {}

    def env(self, role: str, port: int = 0, **extra: str) -> dict[str, str]:
        keys = self.keys.get(role, {"AccessKeyId": "testing", "SecretAccessKey": "testing"})
        return service_env(
            self.root / f"data-{role}", port, **{**self.names.env(self.endpoint),
                                                 "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
                                                 "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"]},
            IMAGESERVICE_JOB_VISIBILITY_TIMEOUT="10", IMAGESERVICE_WORKER_POLL_SECONDS="1",
            IMAGESERVICE_UPLOAD_URL_TTL=str(UPLOAD_URL_TTL), **extra,
        )

    def setup(self) -> None:
        """Resources (as CloudFormation would make them) and one IAM user per role, then enforce."""
        result = run_cli(self.env("setup", 8000), "setup")
        assert result.returncode == 0, result.stdout + result.stderr
        self.deployment.share_distribution = self.make_share_distribution()
        iam = client(self.endpoint, "iam", {"AccessKeyId": "testing", "SecretAccessKey": "testing"})
        policies = {role: moto_view(role_policy(role, self.deployment)) for role in iam_policies.ROLES}
        policies["admin"] = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        for role, policy in policies.items():
            iam.create_user(UserName=role)
            iam.put_user_policy(UserName=role, PolicyName=role, PolicyDocument=json.dumps(policy))
            self.keys[role] = iam.create_access_key(UserName=role)["AccessKey"]
        answer = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=5)
        assert answer.status_code == 200, answer.text
        self.admin_s3 = client(self.endpoint, "s3", self.keys["admin"])

    def make_share_distribution(self) -> str:
        """The app stack's CloudFront distribution of share links (before IAM is enforced)."""
        return make_share_distribution(
            client(self.endpoint, "cloudfront", {"AccessKeyId": "testing", "SecretAccessKey": "testing"}))

    def start(self) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        self.processes.append(ServerProcess(
            imageservice("serve", "--host", "127.0.0.1", "--port", str(port)),
            self.env("app", port, IMAGESERVICE_CDN_DISTRIBUTION_ID=self.deployment.share_distribution),
            self.root / "serve.log", ready_url=f"{base}/healthz").start())
        self.processes.append(ServerProcess(imageservice("worker"), self.env("processor", port),
                                            self.root / "worker.log").start())
        return base

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in [self.moto, *self.processes])

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.moto.stop()

    def keys_of(self, image_id: str) -> list[str]:
        listing = self.admin_s3.list_objects_v2(Bucket=self.names.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []) if image_id in item["Key"])

    # -- presigned URLs (see the module docstring) --------------------------------------------

    def _signed_request(self, url: str) -> tuple[str, str]:
        """(bucket, key) of a presigned URL, after checking the app's key signed it."""
        parts = urlsplit(url)
        credential = parse_qs(parts.query)["X-Amz-Credential"][0]
        assert credential.split("/")[0] == self.keys["app"]["AccessKeyId"], credential
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        return bucket, key

    def upload_as_presigned(self, ticket: dict, data: bytes) -> None:
        bucket, key = self._signed_request(ticket["upload_url"])
        client(self.endpoint, "s3", self.keys["app"]).put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=ticket["upload_headers"]["Content-Type"])

    def download_as_presigned(self, url: str) -> tuple[bytes, str]:
        bucket, key = self._signed_request(url)
        query = parse_qs(urlsplit(url).query)
        response = client(self.endpoint, "s3", self.keys["app"]).get_object(
            Bucket=bucket, Key=key, ResponseContentType=query["response-content-type"][0])
        return response["Body"].read(), response["ContentType"]


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    deployment = EnforcedDeployment(tmp_path_factory.mktemp("iam"))
    try:
        deployment.setup()
        deployment.base = deployment.start()
        yield deployment
    finally:
        deployment.stop()


def wait_for(predicate, what: str, deployment, timeout: float = WAIT_SECONDS):
    return wait_until(predicate, what, deployment, timeout)


def processed(base: str, image_id: str, session=requests, **kwargs):
    def check():
        record = session.get(f"{base}/api/images/{image_id}", timeout=5, **kwargs).json()
        return record if record.get("status") in ("ready", "rejected") else None
    return check


def settled_batch(url: str, headers: dict):
    def check():
        batch = requests.get(url, headers=headers, timeout=5).json()
        return batch if batch.get("status") in ("ready", "failed") else None
    return check


def test_the_whole_flow_succeeds_under_the_roles_policies(enforced):
    base = enforced.base
    app_env = enforced.env("app", 8000)
    created = run_cli(app_env, "token", "create", "alice")
    assert created.returncode == 0, created.stderr
    auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    assert requests.get(f"{base}/readyz", timeout=10).json()["status"] == "ready"  # HeadBucket, GetItem, GetQueueAttributes

    # upload -> S3 notification -> SQS -> worker (processor's keys) -> ready
    data = imagefactory.jpeg_bytes(1200, 900)
    ticket = requests.post(f"{base}/api/images/upload", headers={**auth, "X-Request-Id": "iam-flow-1"}, timeout=10,
                           json={"content_type": "image/jpeg", "size": len(data), "filename": "quay.jpg",
                                 "tags": ["sea"]}).json()
    enforced.upload_as_presigned(ticket, data)
    image_id = ticket["image_id"]
    completed = requests.post(f"{base}/api/images/{image_id}/complete", headers=auth, timeout=10)  # SendMessage
    assert completed.status_code == 202, completed.text
    record = wait_for(processed(base, image_id, headers=auth), "processing", enforced)
    assert record["status"] == "ready" and set(record["derivatives"]) == {"thumb", "preview"}, record

    listed = requests.get(f"{base}/api/images", params={"tag": "sea"}, headers=auth, timeout=10)
    assert [r["image_id"] for r in listed.json()["images"]] == [image_id], listed.text
    converted = requests.post(f"{base}/api/images/{image_id}/convert", headers=auth, timeout=30,
                              json={"format": "png", "width": 200, "height": 200, "fit": "cover"})
    assert converted.status_code == 200, converted.text
    body, content_type = enforced.download_as_presigned(converted.json()["download_url"])
    assert content_type == "image/png" and body.startswith(b"\x89PNG")
    again = requests.post(f"{base}/api/images/{image_id}/convert", headers=auth, timeout=30,
                          json={"format": "png", "width": 200, "height": 200, "fit": "cover"})
    assert again.json()["bytes"] == converted.json()["bytes"]  # the cached conversion (GetObject, HeadObject)
    for variant in ("original", "thumb", "preview"):
        link = requests.get(f"{base}/api/images/{image_id}/download", params={"variant": variant}, headers=auth,
                            timeout=10)
        assert link.status_code == 200, link.text
        body, _ = enforced.download_as_presigned(link.json()["download_url"])
        assert body == data if variant == "original" else body[8:12] == b"WEBP"
    patched = requests.patch(f"{base}/api/images/{image_id}", headers=auth, json={"tags": ["harbour"]}, timeout=10)
    assert patched.status_code == 200, patched.text

    # a share link: its public rendition (S3 GetObject, PutObject), then its revocation, which
    # invalidates it at the share distribution (cloudfront:CreateInvalidation, the app's only)
    link = requests.post(f"{base}/api/images/{image_id}/links", headers=auth, json={}, timeout=10)
    assert link.status_code == 201, link.text
    link_id = link.json()["link_id"]
    rendition = requests.get(f"{base}/s/{link_id}/w/640", headers={"Accept": "image/webp"}, timeout=30)
    assert rendition.status_code == 200 and rendition.headers["Content-Type"] == "image/webp", rendition.text
    assert requests.delete(f"{base}/api/links/{link_id}", headers=auth, timeout=10).status_code == 204
    cloudfront = client(enforced.endpoint, "cloudfront", enforced.keys["admin"])
    [invalidation] = cloudfront.list_invalidations(
        DistributionId=enforced.deployment.share_distribution)["InvalidationList"]["Items"]
    paths = cloudfront.get_invalidation(DistributionId=enforced.deployment.share_distribution,
                                        Id=invalidation["Id"])["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == [f"/s/{link_id}", f"/s/{link_id}/*"]

    # a batch: the app queues it, the processor streams the ZIP into S3 (PutObject or a
    # multipart upload under conversions/*/batches/), the app signs its download
    batch = requests.post(f"{base}/api/batches", headers=auth, json={"action": "zip", "image_ids": [image_id]},
                          timeout=10)
    assert batch.status_code == 202, batch.text
    batch_url = f"{base}/api/batches/{batch.json()['batch_id']}"
    ready = wait_for(settled_batch(batch_url, auth), "the batch", enforced)
    assert ready["status"] == "ready", ready
    archive, content_type = enforced.download_as_presigned(ready["download_url"])
    assert content_type == "application/zip" and zipfile.ZipFile(io.BytesIO(archive)).namelist() == ["quay.jpg"]
    assert requests.delete(batch_url, headers=auth, timeout=10).status_code == 204
    assert requests.delete(f"{base}/api/images/{image_id}", headers=auth, timeout=10).status_code == 204
    assert enforced.keys_of(image_id) == []

    # a browser-like session workspace: page, CSRF-protected upload, processing, delete
    browser = requests.Session()
    page = browser.get(f"{base}/", timeout=10)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf, page.text[:500]
    headers = {"X-CSRF-Token": csrf.group(1)}
    small = imagefactory.jpeg_bytes(400, 300)
    ticket = browser.post(f"{base}/api/images/upload", headers=headers, timeout=10,
                          json={"content_type": "image/jpeg", "size": len(small), "filename": "cat.jpg"}).json()
    assert "/sessions/originals/anon-" in ticket["upload_url"], ticket
    enforced.upload_as_presigned(ticket, small)
    session_record = wait_for(processed(base, ticket["image_id"], session=browser), "session processing", enforced)
    assert session_record["status"] == "ready" and session_record["expires_at"], session_record
    assert browser.delete(f"{base}/api/images/{ticket['image_id']}", headers=headers, timeout=10).status_code == 204

    # sweep (app's keys): a ticket never used is abandoned once its URL lapsed
    abandoned = requests.post(f"{base}/api/images/upload", headers=auth, timeout=10,
                              json={"content_type": "image/png", "size": 100}).json()["image_id"]
    time.sleep(UPLOAD_URL_TTL + 1)
    swept = run_cli(enforced.env("app", 8000, IMAGESERVICE_PENDING_GRACE="0"), "sweep")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert json.loads(swept.stdout)["abandoned"] >= 1, swept.stdout
    assert requests.get(f"{base}/api/images/{abandoned}", headers=auth, timeout=10).status_code == 404

    # nothing anywhere was refused, and the metrics and the request id went where they should
    refused = re.findall(r'.*HTTP/1\.1" 403 .*', enforced.moto.log_path.read_text())
    assert not refused and "AccessDenied" not in enforced.logs(), refused
    for name in ("serve.log", "worker.log"):  # structured logs: every line one JSON object
        lines = [line for line in (enforced.root / name).read_text().splitlines() if line.strip()]
        assert lines and all(line.startswith("{") for line in lines), [ln for ln in lines if ln[:1] != "{"][:5]
    serve_lines = [json.loads(line) for line in (enforced.root / "serve.log").read_text().splitlines()
                   if line.startswith("{")]
    emf = {m["Name"] for line in serve_lines if "_aws" in line for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"ConversionTime", "ConversionBytes"} <= emf, emf
    worker_lines = [json.loads(line) for line in (enforced.root / "worker.log").read_text().splitlines()
                    if line.startswith("{")]
    assert any(line.get("request_id") == "iam-flow-1" and line.get("outcome") == "ready" for line in worker_lines)
    assert any("ProcessingTime" in line for line in worker_lines)


def test_what_each_role_must_not_do_is_denied(enforced):
    names, endpoint, deployment = enforced.names, enforced.endpoint, enforced.deployment
    app = {service: client(endpoint, service, enforced.keys["app"]) for service in ("s3", "sqs", "dynamodb")}
    processor = {service: client(endpoint, service, enforced.keys["processor"]) for service in ("s3", "sqs", "dynamodb")}
    bucket, table = names.bucket, names.table
    queue, dead_letters = names.queue_url, names.dead_letter_queue_url
    enforced.admin_s3.put_object(Bucket=bucket, Key="quarantine/alice/x", Body=b"EICAR")
    enforced.admin_s3.put_object(Bucket=bucket, Key="conversions/alice/x/y.png", Body=b"png")

    # the app (Fargate task role)
    assert denied(lambda: app["sqs"].delete_queue(QueueUrl=queue))
    assert denied(lambda: app["sqs"].receive_message(QueueUrl=queue))  # only the processor consumes jobs
    assert denied(lambda: app["sqs"].send_message(QueueUrl=dead_letters, MessageBody="{}"))
    assert denied(lambda: app["s3"].get_object(Bucket=bucket, Key="quarantine/alice/x"))  # never downloadable
    # HEAD follows GET (the s3:HeadObject alias, iam_policies.MOTO_ACTION_ALIASES) and no further
    assert denied(lambda: app["s3"].head_object(Bucket=bucket, Key="quarantine/alice/x"))
    assert app["s3"].head_object(Bucket=bucket, Key="conversions/alice/x/y.png")["ContentLength"] == 3
    assert denied(lambda: app["s3"].put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x"))
    assert denied(lambda: app["s3"].delete_bucket(Bucket=bucket))
    assert denied(lambda: app["dynamodb"].delete_table(TableName=table))
    # The app's units of work put whole items (records, counters, keys) on the images table and
    # never update one in place; UpdateItem is Flask-Session's, on the sessions table. moto
    # widens DynamoDB resources, so this is its evaluator's word.
    assert allowed_by_template("app", deployment, "dynamodb:PutItem", deployment.arn("dynamodb", f"table/{table}"))
    assert not allowed_by_template("app", deployment, "dynamodb:UpdateItem", deployment.arn("dynamodb", f"table/{table}"))
    assert allowed_by_template("app", deployment, "dynamodb:UpdateItem",
                               deployment.arn("dynamodb", f"table/{names.session_table}"))
    # The app may invalidate its share links' distribution and no other; the processor none.
    share = deployment.arn("cloudfront", f"distribution/{deployment.share_distribution}", region=False)
    assert allowed_by_template("app", deployment, "cloudfront:CreateInvalidation", share)
    assert not allowed_by_template("app", deployment, "cloudfront:CreateInvalidation",
                                   deployment.arn("cloudfront", "distribution/EOTHERDISTRIBUTION", region=False))
    assert not allowed_by_template("processor", deployment, "cloudfront:CreateInvalidation", share)
    other_table = deployment.arn("dynamodb", "table/someone-elses")
    assert not allowed_by_template("app", deployment, "dynamodb:GetItem", other_table)
    assert not allowed_by_template("app", deployment, "dynamodb:Scan", deployment.arn("dynamodb", f"table/{names.session_table}"))
    assert allowed_by_template("app", deployment, "dynamodb:GetItem", deployment.arn("dynamodb", f"table/{table}"))

    # the processor (Lambda role)
    assert denied(lambda: processor["s3"].put_object(Bucket=bucket, Key="conversions/alice/x/z.png", Body=b"x"))
    assert denied(lambda: processor["s3"].get_object(Bucket=bucket, Key="conversions/alice/x/y.png"))
    assert denied(lambda: processor["s3"].get_object(Bucket=bucket, Key="quarantine/alice/x"))
    assert denied(lambda: processor["s3"].head_object(Bucket=bucket, Key="quarantine/alice/x"))
    assert denied(lambda: processor["s3"].get_object(Bucket=bucket, Key="derivatives/alice/x/thumb.webp"))
    # (SendMessage on the job queue is granted: the pipeline queues its image events as notify jobs.)
    assert denied(lambda: processor["sqs"].send_message(QueueUrl=dead_letters, MessageBody="{}"))
    assert denied(lambda: processor["sqs"].delete_queue(QueueUrl=queue))
    assert denied(lambda: processor["sqs"].receive_message(QueueUrl=dead_letters))
    assert denied(lambda: processor["dynamodb"].delete_item(TableName=table, Key={"user_id": {"S": "a"}, "image_id": {"S": "b"}}))
    assert denied(lambda: processor["dynamodb"].scan(TableName=table))
    # (Query is granted: an adopted object's owner without a usage counter is counted once.)
    assert not allowed_by_template("processor", deployment, "dynamodb:UpdateItem", deployment.arn("dynamodb", f"table/{table}"))
    assert not allowed_by_template("processor", deployment, "dynamodb:GetItem",
                                   deployment.arn("dynamodb", f"table/{names.session_table}"))
    # By design the processor may write originals/: it adopts an object dropped into the bucket
    # under its canonical key (and moves a denied file to quarantine/).
    assert allowed_by_template("processor", deployment, "s3:PutObject", f"arn:aws:s3:::{bucket}/originals/alice/01H")
    assert not allowed_by_template("processor", deployment, "s3:PutObject", f"arn:aws:s3:::{bucket}/conversions/alice/01H/x")


def test_moto_authorizes_s3_calls_by_operation_name(enforced):
    """The gap the S3 aliases work around (iam_policies.MOTO_ACTION_ALIASES): AWS authorizes
    HeadObject as s3:GetObject and ListObjectsV2 as s3:ListBucket; the moto pinned in the lock asks
    for "s3:HeadObject" and "s3:ListObjectsV2". When a moto upgrade makes this fail, it authorizes
    them as AWS does: drop the aliases."""
    iam = client(enforced.endpoint, "iam", enforced.keys["admin"])
    iam.create_user(UserName="get-only")
    iam.put_user_policy(UserName="get-only", PolicyName="get-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{enforced.names.bucket}/*"},
                      {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{enforced.names.bucket}"}],
    }))
    get_only = client(enforced.endpoint, "s3", iam.create_access_key(UserName="get-only")["AccessKey"])
    bucket = enforced.names.bucket
    enforced.admin_s3.put_object(Bucket=bucket, Key="canary/x", Body=b"abc")
    assert get_only.get_object(Bucket=bucket, Key="canary/x")["Body"].read() == b"abc"
    assert denied(lambda: get_only.head_object(Bucket=bucket, Key="canary/x"))
    assert denied(lambda: get_only.list_objects_v2(Bucket=bucket, Prefix="canary/"))
