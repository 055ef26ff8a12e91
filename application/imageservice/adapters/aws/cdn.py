"""The CloudFront distribution in front of share links: invalidations when a link ends."""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError

from ...ports import NO_METRICS, Metrics

log = logging.getLogger(__name__)


class CloudFrontEdgeCache:
    def __init__(self, cloudfront_client, distribution_id: str, metrics: Metrics = NO_METRICS):
        self.cloudfront = cloudfront_client
        self.distribution_id = distribution_id
        self.metrics = metrics

    def invalidate_link(self, link_id: str) -> None:
        """One invalidation of the link's page and everything under it (renditions, original)."""
        paths = [f"/s/{link_id}", f"/s/{link_id}/*"]
        try:
            self.cloudfront.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths},
                                   "CallerReference": f"link-{link_id}-{uuid.uuid4().hex}"},
            )
        except (ClientError, BotoCoreError) as exc:
            # The origin already answers 404; the CDN's copies end with the link's expiry.
            log.error("could not invalidate share link %s at CloudFront: %s", link_id, exc)
            self.metrics.increment("cdn_invalidation_failures")
