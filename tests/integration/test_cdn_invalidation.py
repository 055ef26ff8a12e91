"""The CloudFront adapter on a moto server: revoking a link invalidates its page and everything
under it on the share distribution, and a CloudFront failure never fails the revocation."""

from __future__ import annotations

import io
import json
import logging

from aws_fixtures import make_share_distribution, moto_server  # noqa: F401

from imageservice.adapters.aws.cdn import CloudFrontEdgeCache
from imageservice.metrics import EmfMetrics


def test_a_revoked_link_is_invalidated_page_and_all(moto_server):  # noqa: F811
    cloudfront = moto_server.client("cloudfront")
    distribution = make_share_distribution(cloudfront)
    edge = CloudFrontEdgeCache(cloudfront, distribution)
    edge.invalidate_link("Vq3kz0Q1hN8mYp2TfW7sLc4d")
    edge.invalidate_link("Vq3kz0Q1hN8mYp2TfW7sLc4d")  # a second revocation path: a new batch, not a clash
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert listed["Quantity"] == 2
    batch = cloudfront.get_invalidation(DistributionId=distribution, Id=listed["Items"][0]["Id"])
    assert sorted(batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]) == [
        "/s/Vq3kz0Q1hN8mYp2TfW7sLc4d", "/s/Vq3kz0Q1hN8mYp2TfW7sLc4d/*"]


def test_a_cloudfront_failure_is_logged_and_counted_not_raised(moto_server, caplog):  # noqa: F811
    """Counted with the web tasks' own metrics sink (the EMF lines the alarm reads), which
    refuses names it does not know: a failure must not turn into an error of the revocation."""
    emitted = io.StringIO()
    edge = CloudFrontEdgeCache(moto_server.client("cloudfront"), "ENOSUCHDISTRIBUTION",
                               EmfMetrics("imageservice-web", emitted))
    with caplog.at_level(logging.ERROR):
        edge.invalidate_link("Vq3kz0Q1hN8mYp2TfW7sLc4d")
    [point] = [json.loads(line) for line in emitted.getvalue().splitlines()]
    assert point["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "CdnInvalidationFailures", "Unit": "Count"}]
    assert (point["service"], point["CdnInvalidationFailures"]) == ("imageservice-web", 1)
    assert "could not invalidate share link Vq3kz0Q1hN8mYp2TfW7sLc4d" in caplog.text
