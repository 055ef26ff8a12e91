"""DynamoDB adapters: the catalog's store in aws mode (docs/AWS.md explains the item layout)."""
