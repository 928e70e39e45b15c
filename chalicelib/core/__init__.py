"""The core: settings, domain errors, statuses, the dependency ports and the cache registry, boto3 clients."""
