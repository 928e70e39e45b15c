"""POST /products/{id}/images: a presigned S3 upload of one product image, capped in size.

The app never handles the image's bytes: it signs an S3 POST policy that allows exactly one object
key, the declared Content-Type and at most MAX_IMAGE_BYTES (S3 refuses a larger upload with 400
EntityTooLarge), for UPLOAD_SECONDS. The key is added to the product's `images` in the same call, so
the product lists the image's URL from then on; the image answers once the upload is done. In AWS
the web page's CDN serves the keys under /images/ from a private bucket; in the dev stack the
embedded S3 serves them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import size

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import ProductNotFoundError, TooManyImagesError
from chalicelib.core.validation import format_time
from chalicelib.domain import catalog
from chalicelib.domain.accounts import owned_creator
from chalicelib.schema.commands import NewImage
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Product

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 10  # per product
UPLOAD_SECONDS = 600
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def new_upload(user_id: str, product_id: str, new: NewImage) -> dict[str, Any]:
    """An upload of one image of the caller's own product: where and how to POST it, and its URL."""
    try:
        product = Product.get(product_id, consistent_read=True)
    except DoesNotExist:
        raise ProductNotFoundError("no such product") from None
    owned_creator(product.creator_id, user_id)
    now = now_ms()
    # The time first, so the keys sort in upload order; the random part makes each key unguessable.
    key = f"images/{product_id}/{now:013d}-{secrets.token_hex(8)}.{EXTENSIONS[new.content_type]}"
    try:
        Product(product_id=product_id).update(
            actions=[Product.images.add({key})],
            condition=Product.product_id.exists()
            & (Product.images.does_not_exist() | (size(Product.images) < MAX_IMAGES)),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise TooManyImagesError(f"a product has at most {MAX_IMAGES} images") from None
        raise
    catalog.product_cache.invalidate(product_id)
    settings = get_settings()
    post = aws.client("s3").generate_presigned_post(
        Bucket=settings.images_bucket,
        Key=key,
        Fields={"Content-Type": new.content_type},
        Conditions=[{"Content-Type": new.content_type}, ["content-length-range", 1, MAX_IMAGE_BYTES]],
        ExpiresIn=UPLOAD_SECONDS,
    )
    expires = datetime.fromtimestamp(now / 1000 + UPLOAD_SECONDS, UTC)
    return {
        "upload_url": post["url"],
        "method": "POST",
        "fields": post["fields"],
        "image_url": f"{settings.images_url}/{key}",
        "max_bytes": MAX_IMAGE_BYTES,
        "expires_at": format_time(int(expires.timestamp() * 1000)),
    }
