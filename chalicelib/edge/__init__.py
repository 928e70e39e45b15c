"""The edge: domain errors to HTTP, JSON responses, the API description."""
