"""The schema: tables, the event vocabulary, request commands, queues, and the stores built on them."""
