"""Event signatures, backoff, and the README's receiver run against a signed request."""

from __future__ import annotations

import re

from support import REPO
from imageservice.notifications import MAX_RETRY_DELAY, event_body, retry_delay, signature_header, verify_signature


def test_signature_is_hmac_of_t_dot_body():
    import hashlib
    import hmac

    body = b'{"id":"evt_1"}'
    header = signature_header("s3cret", body, 1700000000)
    assert header == "t=1700000000,v1=" + hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, header, now=1700000100)
    assert not verify_signature("s3cret", body, header, now=1700000301)
    assert not verify_signature("s3cret", body, "t=nope,v1=00")
    assert not verify_signature("s3cret", body, "")


def test_backoff_doubles_up_to_its_cap():
    assert [retry_delay(10, n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(10, 30) == MAX_RETRY_DELAY


def test_the_readme_receiver_accepts_signed_events_and_refuses_others():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Notifications", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {"__name__": "readme_receiver"}
    exec(compile(code, "README receiver", "exec"), namespace)
    client = namespace["app"].test_client()
    secret = namespace["SECRET"].decode()
    import time

    body = event_body({"id": "evt_1", "type": "image.ready", "occurred_at": "x", "image": {"title": "ü"}})
    good = signature_header(secret, body, int(time.time()))
    post = lambda header, data=body: client.post("/hooks/images", data=data, headers={  # noqa: E731
        "Imageservice-Signature": header, "Content-Type": "application/json"})
    assert post(good).status_code == 204
    assert post(good, body.replace(b"ready", b"rejected")).status_code == 400
    assert post(signature_header("wrong", body, int(time.time()))).status_code == 400
    assert post(signature_header(secret, body, int(time.time()) - 3600)).status_code == 400
