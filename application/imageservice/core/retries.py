"""When a job has used up its attempts: one rule for the local queue, SQS, the worker and the Lambda."""

from __future__ import annotations


def attempts_exhausted(attempts: int, max_attempts: int) -> bool:
    """Whether delivery number ``attempts`` (1-based, this one included) is the last allowed.

    It counts as SQS's ``ApproximateReceiveCount`` against a redrive policy's
    ``maxReceiveCount`` does: the job is dead-lettered after failing delivery ``max_attempts``,
    so that is the delivery on which the pipeline marks the record ``processing_failed``.
    """
    return attempts >= max_attempts
