"""SNS EventTopic: image events for subscribers (SQS queues, Lambdas, e-mail, HTTPS endpoints)."""

from __future__ import annotations

from typing import Any

from ...notifications import event_body
from .errors import transient_errors


class SnsEventTopic:
    def __init__(self, sns_client, topic_arn: str):
        self.sns = sns_client
        self.topic_arn = topic_arn

    def publish(self, event: dict[str, Any]) -> None:
        """Publish the event's JSON; the message attribute ``type`` (``image.ready`` /
        ``image.rejected``) lets a subscription filter without reading the body. Raises
        TransientError on throttling or network failures."""
        with transient_errors("publish event"):
            self.sns.publish(
                TopicArn=self.topic_arn,
                Message=event_body(event).decode(),
                MessageAttributes={"type": {"DataType": "String", "StringValue": event["type"]}},
            )
