"""The follow graph: idempotent, exact under concurrency, paginated, sliceable for fan-out."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.domain import accounts, follows
from tests.support import answered, each_accepted


@pytest.fixture()
def creator(api, new_user):
    owner = new_user(name="Star", creator=True)
    return api.get("/me", owner.token).json()["creator_id"], owner


def test_follow_is_idempotent_and_unfollow_tolerant(api, new_user, creator) -> None:
    creator_id, _ = creator
    fan = new_user()
    for _ in range(3):
        response = api.post(f"/creators/{creator_id}/follow", fan.token)
        assert response.status_code == 200
        assert response.json() == {"creator_id": creator_id, "user_id": fan.user_id, "following": True}
    assert api.get(f"/creators/{creator_id}").json()["follower_count"] == 1
    assert api.get(f"/users/{fan.user_id}/follows/{creator_id}", fan.token).json() == {"following": True}
    for _ in range(2):
        assert api.delete(f"/creators/{creator_id}/follow", fan.token).status_code == 204
    assert api.get(f"/creators/{creator_id}").json()["follower_count"] == 0
    assert api.get(f"/users/{fan.user_id}/follows/{creator_id}", fan.token).json() == {"following": False}


def test_unknown_creator_is_404(api, new_user) -> None:
    fan = new_user()
    response = api.post("/creators/cr_missing/follow", fan.token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "creator_not_found"
    assert api.get("/creators/cr_missing/followers", fan.token).status_code == 404


def test_concurrent_follows_and_unfollows_keep_the_count_exact(api, new_user, creator) -> None:
    creator_id, owner = creator
    fans = [new_user() for _ in range(50)]

    # Sixteen at once on one creator's count: a follow refused as busy (503 try_again) is sent again, as a
    # client does.
    def follow(fan) -> int:
        return answered(lambda: api.post(f"/creators/{creator_id}/follow", fan.token)).status_code

    def unfollow(fan) -> int:
        return answered(lambda: api.delete(f"/creators/{creator_id}/follow", fan.token)).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(follow, fans * 2))
        assert results == [200] * 100
        gone = list(pool.map(unfollow, fans[:20]))
        assert gone == [204] * 20
    assert api.get(f"/creators/{creator_id}").json()["follower_count"] == 30
    listed = api.get(f"/creators/{creator_id}/followers?limit=100", owner.token).json()
    assert sorted(i["user_id"] for i in listed["items"]) == sorted(f.user_id for f in fans[20:])
    assert listed["next_page"] is None
    for fan in fans[20:23]:
        mine = api.get(f"/users/{fan.user_id}/following", fan.token).json()["items"]
        assert [i["creator_id"] for i in mine] == [creator_id]


def test_pagination_of_250_followers(api, new_user) -> None:
    owner = new_user(creator=True)
    creator_id = api.get("/me", owner.token).json()["creator_id"]
    ids = [str(uuid.uuid4()) for _ in range(250)]
    # Eight at a time, a refused follow (`try_again`: the follower count was busy) tried again, as a client does.
    each_accepted(lambda uid: follows.follow(uid, creator_id), ids)
    assert accounts.get_creator(creator_id).follower_count == 250
    seen: list[str] = []
    pages = 0
    page = None
    while True:
        path = f"/creators/{creator_id}/followers?limit=100" + (f"&page={page}" if page else "")
        body = api.get(path, owner.token).json()
        pages += 1
        seen += [i["user_id"] for i in body["items"]]
        page = body["next_page"]
        if not page:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == set(ids)


@pytest.mark.parametrize("page", ["garbage!", "eyJ4IjoxfQ", "W10", "%%%"])
def test_garbled_page_token_is_400(api, new_user, creator, page) -> None:
    creator_id, owner = creator
    response = api.get(f"/creators/{creator_id}/followers?page={page}", owner.token)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page"


def test_a_token_from_another_listing_is_400(api, new_user) -> None:
    owner = new_user(creator=True)
    creator_id = api.get("/me", owner.token).json()["creator_id"]
    for _ in range(3):
        follows.follow(str(uuid.uuid4()), creator_id)
    page = api.get(f"/creators/{creator_id}/followers?limit=1", owner.token).json()["next_page"]
    other = new_user(creator=True)
    other_id = api.get("/me", other.token).json()["creator_id"]
    assert api.get(f"/creators/{other_id}/followers?page={page}", owner.token).status_code == 400


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1"])
def test_bad_limit_is_400(api, creator, limit) -> None:
    creator_id, owner = creator
    assert api.get(f"/creators/{creator_id}/followers?limit={limit}", owner.token).status_code == 400


def test_slices_cover_every_follower_exactly_once(api, new_user) -> None:
    owner = new_user(creator=True)
    creator_id = api.get("/me", owner.token).json()["creator_id"]
    ids = [str(uuid.uuid4()) for _ in range(300)] + ["0000", "ffff-last", "zz-not-hex", "A-upper"]
    # Eight at once on one creator's count contend, as in DynamoDB: a client told to try again does.
    each_accepted(lambda uid: follows.follow(uid, creator_id), ids)
    for count in (1, 3, 8, 16):
        seen: list[str] = []
        for part in follows.follower_slices(count):
            after = None
            while True:
                batch, after = follows.read_follower_slice(creator_id, part, limit=37, after=after)
                assert all(part.contains(uid) for uid in batch)
                seen += batch
                if after is None:
                    break
        assert sorted(seen) == sorted(ids), count
