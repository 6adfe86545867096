"""'Today' is the current date in UTC, whatever the server's local time zone:
two servers, at UTC+14 and UTC-12 (at every hour one of them has a local date
other than the UTC date)."""
from datetime import timedelta

import pytest

import hellotest as ht


@pytest.fixture(scope="module", params=[ht.TZ_EAST, ht.TZ_WEST], ids=["utc+14", "utc-12"])
def tz_client(request, db, tmp_path_factory):
    server = ht.Httpd(tmp_path_factory.mktemp("httpd-tz"), db=db, env={"TZ": request.param})
    try:
        server.start()
        yield server.client()
    finally:
        server.stop()
    server.assert_healthy()


def on_one_utc_day(action):
    for _ in range(3):
        today = ht.utc_today()
        result = action(today)
        if ht.utc_today() == today:
            return result, today
    raise AssertionError("the UTC date kept changing")


def test_birthday_today_in_utc(tz_client, names):
    user = names.new()

    def run(today):
        dob = ht.same_day_in_2000(today)
        assert tz_client.put_date(f"/hello/{user}", dob).status == 204
        return tz_client.get(f"/hello/{user}")
    r, today = on_one_utc_day(run)
    assert r.message == f"Hello, {user}! Happy birthday!"


def test_birthday_tomorrow_and_yesterday_in_utc(tz_client, names):
    for delta in (1, -1, 2, -2):
        user = names.new()

        def run(today):
            dob = ht.same_day_in_2000(today + timedelta(days=delta))
            assert tz_client.put_date(f"/hello/{user}", dob).status == 204
            return tz_client.get(f"/hello/{user}"), dob
        (r, dob), today = on_one_utc_day(run)
        assert r.message == ht.expected_message(user, dob, today)


def test_put_today_refused_yesterday_accepted_in_utc(tz_client, names, db):
    user = names.new()
    r, today = on_one_utc_day(lambda today: tz_client.put_date(f"/hello/{user}", today))
    assert r.status == 400 and r.error == ht.R_FUTURE
    r, today = on_one_utc_day(
        lambda today: (tz_client.put_date(f"/hello/{user}", today + timedelta(days=1)),
                       tz_client.put_date(f"/hello/{user}", today - timedelta(days=1))))
    tomorrow, yesterday = r
    assert tomorrow.status == 400 and tomorrow.error == ht.R_FUTURE
    assert yesterday.status == 204
    assert db.date_of_birth(user) == (today - timedelta(days=1)).isoformat()
