"""POST /orders/{id}/cancel: a buyer takes back an order that is still awaiting payment.

The cancellation is the same guarded compensation as a declined payment or an expiry
(orders.release_reservation): one transaction sets the order `cancelled` only while it is still
`pending_payment` and gives its units back to the drop's stock (or its shard) and the buyer's
purchase counter, so of a cancellation, a confirmation and an expiry racing each other exactly one
wins. A retried cancellation finds the order cancelled and answers it again.

Against the payments consumer: an order read as cancelled is never charged (payments charges only a
pending order); a confirmed one is refused here (409 order_not_cancellable); and a charge that was
already on its way when the cancellation won finds the order no longer pending, so its confirmation
fails and the payment is refunded at once (payments.settle)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.errors import OrderNotCancellableError, OrderNotFoundError
from chalicelib.core.observability import count
from chalicelib.core.statuses import OrderStatus
from chalicelib.domain.orders import derived_status, load_order, order_view
from chalicelib.domain.settlement import release_reservation

# A cancellation that loses a race re-reads the order and decides again; twice is plenty.
_ATTEMPTS = 3


def cancel_order(user_id: str, order_id: str) -> dict[str, Any]:
    """The caller's order, cancelled (or already so); anyone else's is OrderNotFoundError."""
    order = load_order(order_id)
    for _ in range(_ATTEMPTS):
        if order is None or order.user_id != user_id:
            raise OrderNotFoundError("no such order")
        status = derived_status(order)
        if status == OrderStatus.CANCELLED:
            return order_view(order)
        if status != OrderStatus.PENDING_PAYMENT:
            raise OrderNotCancellableError(f"the order is {status}: only an order awaiting payment can be cancelled")
        if release_reservation(order_id, OrderStatus.CANCELLED, order=order):
            count("OrderCancelled")
        order = load_order(order_id)
    raise OrderNotCancellableError("the order changed while cancelling it, try again")
