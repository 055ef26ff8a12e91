from urllib.parse import parse_qsl, urlsplit

import pytest

from imageservice.adapters.local.blobstore import LocalUrlSigner
from imageservice.core.errors import Forbidden


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def _split(url):
    parts = urlsplit(url)
    return parts.path.removeprefix("/blobs/"), dict(parse_qsl(parts.query))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def signer(clock):
    return LocalUrlSigner("secret", "http://localhost:8000", clock=clock)


def test_a_signed_url_verifies_with_its_constraints(signer):
    url, _ = signer.sign("PUT", "originals/alice/X", 600, **{"X-Content-Type": "image/png", "X-Content-Length": "10"})
    key, params = _split(url)
    verified = signer.verify("PUT", key, params)
    assert (verified.content_type, verified.content_length) == ("image/png", 10)


@pytest.mark.parametrize("change", [
    lambda key, p: ("originals/alice/Y", p),
    lambda key, p: (key, {**p, "X-Content-Type": "text/html"}),
    lambda key, p: (key, {**p, "X-Content-Length": "999999"}),
    lambda key, p: (key, {**p, "X-Expires": str(int(p["X-Expires"]) + 3600)}),
    lambda key, p: (key, {**p, "X-Signature": "0" * 64}),
    lambda key, p: (key, {k: v for k, v in p.items() if k != "X-Content-Type"}),
])
def test_any_change_breaks_the_signature(signer, change):
    url, _ = signer.sign("PUT", "originals/alice/X", 600, **{"X-Content-Type": "image/png", "X-Content-Length": "10"})
    key, params = change(*_split(url))
    with pytest.raises(Forbidden) as raised:
        signer.verify("PUT", key, params)
    assert raised.value.code == "invalid_signature"


def test_method_is_signed(signer):
    key, params = _split(signer.sign("GET", "originals/alice/X", 60)[0])
    with pytest.raises(Forbidden):
        signer.verify("PUT", key, params)
    assert signer.verify("HEAD", key, params).key == key


def test_expiry(signer, clock):
    key, params = _split(signer.sign("GET", "k/x", 60)[0])
    clock.now += 61
    with pytest.raises(Forbidden) as raised:
        signer.verify("GET", key, params)
    assert raised.value.code == "url_expired"


def test_another_secret_does_not_verify(signer):
    key, params = _split(signer.sign("GET", "k/x", 60)[0])
    with pytest.raises(Forbidden):
        LocalUrlSigner("other", "http://localhost:8000").verify("GET", key, params)
