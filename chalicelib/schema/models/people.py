"""Users, creators and who follows whom."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.schema.models.base import _index_meta, _meta


class User(Model):
    Meta = _meta("Users")
    user_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    creator_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()


class Creator(Model):
    Meta = _meta("Creators")
    creator_id = UnicodeAttribute(hash_key=True)
    owner_user_id = UnicodeAttribute()
    name = UnicodeAttribute()
    profile = UnicodeAttribute(default="")
    follower_count = NumberAttribute(default=0)
    created_at = NumberAttribute()
    search_name = UnicodeAttribute(null=True)  # the name case-folded, for GET /creators?query= (domain.search)


class FollowsByUser(GlobalSecondaryIndex["Follow"]):
    Meta = _index_meta("by_user", AllProjection())
    user_id = UnicodeAttribute(hash_key=True)
    followed_at = NumberAttribute(range_key=True)


class Follow(Model):
    """One row per (creator, follower); the creator partition is read in sort-key slices."""

    Meta = _meta("Follows")
    creator_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    followed_at = NumberAttribute()
    by_user = FollowsByUser()
