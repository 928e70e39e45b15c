"""Delivery: what carries the domain's news out (streams, queues, pushes, e-mail, payments)."""
