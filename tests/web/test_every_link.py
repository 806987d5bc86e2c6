"""Every page a visitor or a signed-in user can reach by following the site's own links
answers: no 5xx and no broken link, for each kind of user, from the seeded demo."""

from __future__ import annotations


import pytest

from tests.web.site_walk import sign_the_log, walk


@pytest.fixture
def as_served(market):
    """The demo as `kapok demo` leaves it: a signing key, and the log signed to its end."""
    sign_the_log(market)


@pytest.mark.parametrize("who", ["anonymous", "buyer", "operator", "auditor"])
def test_every_link_a_user_can_follow_answers(as_served, request, who):
    client = request.getfixturevalue(who)
    statuses = walk(client)
    assert len(statuses) > 10, statuses  # the walk reached the site, not only its door
    broken = {path: status for path, status in statuses.items() if status >= 400}
    assert broken == {}
