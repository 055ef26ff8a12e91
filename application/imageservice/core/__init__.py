"""The core: records, errors, imaging and the pipeline. Imports neither Flask nor boto3."""
