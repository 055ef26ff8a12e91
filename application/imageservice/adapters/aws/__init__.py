"""Adapters for AWS: S3 blobs, DynamoDB catalog, SQS job queue."""
