"""The segment evaluator without a database: definitions as data, each condition on worked
examples, the built-ins, windows and patterns in programme time (a Berlin DST switch), CSVs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from treu.errors import InvalidInput
from treu.programmes.model import parse_document
from treu.segments.model import (
    CsvRow,
    MemberFacts,
    Purchase,
    SegmentDef,
    built_in_segments,
    effective_segments,
    mask_email,
    mask_name,
    matches,
    member_references,
    needs,
)

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = date(2026, 4, 1)  # a Wednesday


def seg(*conditions: dict[str, Any], any_: list[dict[str, Any]] | None = None) -> SegmentDef:
    data: dict[str, Any] = {"key": "s", "name": "S", "all": list(conditions)}
    if any_ is not None:
        data["any"] = any_
    return SegmentDef.model_validate(data)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def facts(**fields: Any) -> MemberFacts:
    fields.setdefault("enrolled_at", at(2025, 1, 1, 12))
    purchases = fields.get("purchases", ())
    if purchases and "purchase_count" not in fields:
        fields["purchase_count"] = len(purchases)
        fields["first_purchase_at"] = min(p.at for p in purchases)
        fields["last_purchase_at"] = max(p.at for p in purchases)
    return MemberFacts(member_id="mbr_1", **fields)


def ok(defn: SegmentDef, f: MemberFacts, *, today: date = TODAY, tz: ZoneInfo = BERLIN) -> bool:
    return matches(defn, f, today=today, tz=tz, currency="EUR")


def buy(when: datetime, minor: int = 350, **labels: frozenset[str]) -> Purchase:
    return Purchase(at=when, net_minor=minor, **labels)


# --- definitions as data ---------------------------------------------------------------------


def test_a_definition_reads_as_the_document_writes_it() -> None:
    defn = SegmentDef.model_validate(
        {
            "key": "morning-regulars",
            "name": "Frühaufsteher",
            "all": [
                {
                    "purchases": {
                        "min": 4,
                        "within_days": 30,
                        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                        "between": ["07:00", "09:00"],
                    }
                }
            ],
        }
    )
    assert defn.kinds() == {"purchases"}
    dumped = defn.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert SegmentDef.model_validate(dumped) == defn


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"purchasez": {"min": 1}}, "unknown condition 'purchasez'"),
        ({"tier": ["gold"], "consent": "email"}, "exactly one key, got tier, consent"),
        ({}, "exactly one key, got nothing"),
        ({"purchases": {"between": ["7:00", "09:00"]}}, "'7:00' is not a time of day"),
        ({"purchases": {"between": ["09:00", "09:00"]}}, "the window would be empty"),
        ({"purchases": {"min": 5, "max": 2}}, "max (2) is below min (5)"),
        ({"purchases": {"weekdays": ["monday"]}}, "Input should be 'mon'"),
        ({"spend": {"min": "1.5e400"}}, "spend.min"),
        ({"attribute": {"name": "city"}}, "give exactly one of equals, in"),
        ({"attribute": {"name": "city", "equals": "x", "in": ["y"]}}, "exactly one of"),
        ({"bought": {"within_days": 30}}, "name at least one of categories"),
        ({"active_between": {"from": "2026-03-01", "to": "2026-02-01"}}, "is before from"),
        ({"birthday": {"month": 13}}, "less than or equal to 12"),
        ({"consent": "post"}, "Input should be 'email', 'sms' or 'push'"),
        ({"last_purchase": {"within_days": 0}}, "greater than or equal to 1"),
        ({"not": {"foo": 1}}, "unknown condition 'foo'"),
    ],
)
def test_a_bad_condition_says_what_is_wrong(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        seg(condition)
    assert message in str(caught.value)


def test_a_segment_needs_a_rule_unless_it_is_static() -> None:
    with pytest.raises(ValidationError, match="give all or any"):
        SegmentDef.model_validate({"key": "s", "name": "S"})
    assert SegmentDef.model_validate({"key": "s", "name": "S", "static": True}).static


def test_the_programme_document_checks_segment_keys_tiers_and_plans() -> None:
    base: dict[str, Any] = {
        "key": "p",
        "name": "P",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
    }
    good = {"key": "a", "name": "A", "all": [{"consent": "email"}]}
    doc = parse_document({**base, "segments": [good]})
    assert doc.segments[0].key == "a"
    for segments, path, message in [
        ([good, good], "segments.1.key", "'a' is used twice"),
        ([{**good, "all": [{"tier": ["gold"]}]}], "segments.0", "unknown tier 'gold'"),
        (
            [{**good, "any": [{"not": {"membership": ["plus"]}}]}],
            "segments.0",
            "unknown membership plan 'plus'",
        ),
        (
            [{**good, "all": [{"purchases": {"min": -1}}]}],
            "segments.0.all.0.purchases.min",
            "greater than or equal to 0",
        ),
    ]:
        with pytest.raises(InvalidInput) as caught:
            parse_document({**base, "segments": segments})
        errors = caught.value.details["errors"]
        assert any(e["path"] == path and message in e["message"] for e in errors), errors


# --- each condition ------------------------------------------------------------------------


def test_recency_counts_from_local_midnight_n_days_ago() -> None:
    defn = seg({"last_purchase": {"within_days": 30}})
    assert ok(defn, facts(purchases=(buy(at(2026, 3, 2, 0, 0)),)))  # 1 April - 30 days
    assert not ok(defn, facts(purchases=(buy(at(2026, 3, 1, 23, 59)),)))
    assert not ok(defn, facts())


def test_inactivity_counts_any_activity_or_else_the_enrolment() -> None:
    defn = seg({"inactive": {"days": 60}})
    assert ok(defn, facts(last_activity_at=at(2026, 1, 30, 23, 59)))  # 1 April - 60 days - 1s
    assert not ok(defn, facts(last_activity_at=at(2026, 1, 31, 0, 0)))
    assert ok(defn, facts(enrolled_at=at(2025, 6, 1, 9)))  # never did anything since
    assert not ok(defn, facts(enrolled_at=at(2026, 3, 20, 9)))


def test_frequency_counts_purchases_in_the_window_on_the_wall_clock() -> None:
    defn = seg(
        {
            "purchases": {
                "min": 2,
                "max": 3,
                "within_days": 14,
                "weekdays": ["sat", "sun"],
                "between": ["10:00", "12:00"],
            }
        }
    )
    weekend = (buy(at(2026, 3, 28, 10, 0)), buy(at(2026, 3, 29, 11, 59)))
    assert ok(defn, facts(purchases=weekend))
    assert not ok(defn, facts(purchases=weekend[:1]))
    assert not ok(defn, facts(purchases=(weekend[0], buy(at(2026, 3, 29, 12, 0)))))  # end: out
    assert not ok(defn, facts(purchases=(weekend[0], buy(at(2026, 3, 30, 11, 0)))))  # Monday
    assert not ok(defn, facts(purchases=weekend * 2))  # four is more than max 3
    assert not ok(defn, facts(purchases=(buy(at(2026, 3, 14, 11)), *weekend[:1])))  # too old


def test_a_time_window_may_span_midnight() -> None:
    defn = seg({"purchases": {"min": 2, "within_days": 7, "between": ["22:00", "02:00"]}})
    assert ok(defn, facts(purchases=(buy(at(2026, 3, 30, 23, 30)), buy(at(2026, 3, 31, 1, 59)))))
    assert not ok(defn, facts(purchases=(buy(at(2026, 3, 30, 23)), buy(at(2026, 3, 31, 2, 0)))))


def test_frequency_without_a_window_counts_every_purchase_ever() -> None:
    never = seg({"purchases": {"min": 0, "max": 0}})
    assert ok(never, facts())
    assert not ok(never, facts(purchase_count=1, since=at(2026, 3, 1, 0)))


def test_weekday_mornings_across_the_berlin_dst_switch_are_read_in_programme_time() -> None:
    # Clocks went forward on Sunday 29 March 2026 at 02:00. 07:30 is 06:30 UTC on Friday and
    # 05:30 UTC on Monday; 09:15 on Tuesday is 07:15 UTC.
    defn = seg(
        {
            "purchases": {
                "min": 2,
                "within_days": 7,
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "between": ["07:00", "09:00"],
            }
        }
    )
    both = facts(purchases=(buy(at(2026, 3, 27, 7, 30)), buy(at(2026, 3, 30, 7, 30))))
    late = facts(purchases=(buy(at(2026, 3, 27, 7, 30)), buy(at(2026, 3, 31, 9, 15))))
    assert ok(defn, both)
    assert not ok(defn, late)
    # the same facts read on the UTC clock get both wrong
    assert not ok(defn, both, tz=ZoneInfo("UTC"))
    assert not ok(defn, late, tz=ZoneInfo("UTC"))  # (07:15 UTC counts, 06:30 UTC does not)
    assert ok(
        seg({"purchases": {"min": 1, "within_days": 7, "between": ["07:00", "09:00"]}}),
        facts(purchases=(buy(at(2026, 3, 31, 9, 15)),)),
        tz=ZoneInfo("UTC"),
    )


def test_spend_is_net_of_returns_in_minor_units() -> None:
    defn = seg({"spend": {"min": "50.00", "within_days": 30}})
    assert ok(defn, facts(purchases=(buy(at(2026, 3, 20, 9), 3000), buy(at(2026, 3, 21, 9), 2000))))
    assert not ok(
        defn, facts(purchases=(buy(at(2026, 3, 20, 9), 3000), buy(at(2026, 3, 21), 1999)))
    )
    capped = seg({"spend": {"min": "10", "max": "20.00"}})
    assert ok(capped, facts(purchases=(buy(at(2020, 1, 1, 9), 2000),), since=None))
    assert not ok(capped, facts(purchases=(buy(at(2020, 1, 1, 9), 2001),), since=None))


def test_tier_and_membership() -> None:
    assert ok(seg({"tier": ["silber", "gold"]}), facts(tier="gold"))
    assert not ok(seg({"tier": ["gold"]}), facts(tier="bronze"))
    assert ok(seg({"membership": ["plus"]}), facts(plans=frozenset({"plus", "family"})))
    assert not ok(seg({"membership": ["plus"]}), facts())


def test_activity_in_a_period_counts_local_dates_both_included() -> None:
    defn = seg({"active_between": {"from": "2026-03-01", "to": "2026-03-31"}})
    assert ok(defn, facts(activity_times=(at(2026, 3, 31, 23, 59),)))
    assert ok(defn, facts(activity_times=(at(2026, 3, 1, 0, 0),)))
    assert not ok(defn, facts(activity_times=(at(2026, 4, 1, 0, 0), at(2026, 2, 28, 23, 59))))


def test_bought_matches_categories_brands_or_skus_in_the_window() -> None:
    defn = seg({"bought": {"categories": ["kuchen"], "brands": ["fritz"], "within_days": 30}})
    cake = buy(at(2026, 3, 20, 15), categories=frozenset({"kuchen", "kaffee"}))
    assert ok(defn, facts(purchases=(cake,)))
    assert ok(defn, facts(purchases=(buy(at(2026, 3, 20, 15), brands=frozenset({"fritz"})),)))
    assert not ok(defn, facts(purchases=(buy(at(2026, 3, 20, 15), skus=frozenset({"kuchen"})),)))
    assert not ok(defn, facts(purchases=(buy(at(2026, 2, 1, 15), categories=cake.categories),)))


def test_first_purchase_within_n_days_of_enrolment() -> None:
    defn = seg({"first_purchase_within_days": 7})
    enrolled = at(2026, 3, 1, 10)
    assert ok(defn, facts(enrolled_at=enrolled, first_purchase_at=at(2026, 3, 8, 10)))
    assert not ok(defn, facts(enrolled_at=enrolled, first_purchase_at=at(2026, 3, 8, 10, 1)))
    assert not ok(defn, facts(enrolled_at=enrolled))


def test_enrolled_within_n_days() -> None:
    defn = seg({"enrolled_within_days": 30})
    assert ok(defn, facts(enrolled_at=at(2026, 3, 2, 0, 0)))
    assert not ok(defn, facts(enrolled_at=at(2026, 3, 1, 23, 59)))


def test_birthday_this_month_or_a_given_month() -> None:
    assert ok(seg({"birthday": "this_month"}), facts(birthday=date(1990, 4, 30)))
    assert not ok(seg({"birthday": "this_month"}), facts(birthday=date(1990, 5, 1)))
    assert ok(seg({"birthday": {"month": 12}}), facts(birthday=date(1990, 12, 24)))
    assert not ok(seg({"birthday": {"month": 12}}), facts())


def test_attributes_equal_or_in_with_types_kept_apart() -> None:
    city = facts(attributes={"city": "Berlin", "vip": True, "visits": 1})
    assert ok(seg({"attribute": {"name": "city", "equals": "Berlin"}}), city)
    assert ok(seg({"attribute": {"name": "city", "in": ["Hamburg", "Berlin"]}}), city)
    assert ok(seg({"attribute": {"name": "vip", "equals": True}}), city)
    assert not ok(seg({"attribute": {"name": "visits", "equals": True}}), city)  # 1 is not True
    assert not ok(seg({"attribute": {"name": "vip", "equals": 1}}), city)
    assert ok(seg({"attribute": {"name": "pet", "in": [None]}}), city)  # missing


def test_consent_per_channel() -> None:
    assert ok(seg({"consent": "email"}), facts(consents=frozenset({"email"})))
    assert not ok(seg({"consent": "sms"}), facts(consents=frozenset({"email"})))


def test_rfm_segment_churn_risk_and_p_alive_read_the_members_scores() -> None:
    at_risk = seg({"rfm_segment": ["at_risk", "cant_lose_them"]})
    assert ok(at_risk, facts(rfm_segment="at_risk"))
    assert ok(at_risk, facts(rfm_segment="cant_lose_them"))
    assert not ok(at_risk, facts(rfm_segment="champions"))
    assert not ok(at_risk, facts())  # never bought: no RFM segment
    slipping = seg({"churn_risk": {"min": 0.6}})
    # both bounds included
    assert ok(slipping, facts(churn_risk=0.6, p_alive=0.4))
    assert not ok(slipping, facts(churn_risk=0.59, p_alive=0.41))
    assert not ok(slipping, facts())  # the models were not fitted: no score, no match
    alive = seg({"p_alive": {"min": 0.2, "max": 0.5}})
    assert [ok(alive, facts(p_alive=p)) for p in (0.19, 0.2, 0.5, 0.51)] == [
        False,
        True,
        True,
        False,
    ]
    # the scores are read from the facts: no window of purchases to load
    need = needs([at_risk, slipping, alive], today=TODAY, tz=BERLIN)
    assert (need.windowed, need.kinds) == (False, {"rfm_segment", "churn_risk", "p_alive"})


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"rfm_segment": ["at risk"]}, "unknown RFM segment 'at risk'"),
        ({"rfm_segment": []}, "at least 1 item"),
        ({"churn_risk": {"min": 0.8, "max": 0.5}}, "max (0.5) is below min (0.8)"),
        ({"p_alive": {"max": 1.5}}, "less than or equal to 1"),
    ],
)
def test_score_conditions_refuse_what_cannot_match(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        seg(condition)


def test_static_segments_hold_only_uploaded_members_and_may_add_conditions() -> None:
    defn = SegmentDef.model_validate(
        {"key": "vip-list", "name": "VIP", "static": True, "all": [{"consent": "email"}]}
    )
    uploaded = frozenset({"vip-list"})
    assert ok(defn, facts(uploaded=uploaded, consents=frozenset({"email"})))
    assert not ok(defn, facts(uploaded=uploaded))
    assert not ok(defn, facts(consents=frozenset({"email"})))


def test_all_any_and_not_nest() -> None:
    defn = seg(
        {"consent": "email"},
        any_=[{"tier": ["gold"]}, {"not": {"any": [{"tier": ["bronze"]}, {"tier": ["silber"]}]}}],
    )
    assert ok(defn, facts(consents=frozenset({"email"}), tier="gold"))
    assert ok(defn, facts(consents=frozenset({"email"}), tier=None))
    assert not ok(defn, facts(consents=frozenset({"email"}), tier="silber"))
    assert not ok(defn, facts(tier="gold"))


# --- built-ins --------------------------------------------------------------------------------


def test_built_in_new_active_inactive() -> None:
    new, active, inactive, _ = built_in_segments("gold", ["plus"])
    fresh = facts(enrolled_at=at(2026, 3, 20, 9))
    assert ok(new, fresh)
    assert not ok(inactive, fresh)
    assert not ok(active, fresh)
    regular = facts(purchases=(buy(at(2026, 2, 1, 9)),))
    assert ok(active, regular)
    assert not ok(inactive, regular)
    assert not ok(new, regular)
    lapsed = facts(purchases=(buy(at(2025, 12, 1, 9)),), since=at(2025, 12, 1, 0))
    assert ok(inactive, lapsed)
    assert not ok(active, lapsed)
    never = facts(enrolled_at=at(2026, 3, 1, 9))  # 31 days ago, nothing bought
    assert ok(inactive, never)
    assert not ok(inactive, facts(enrolled_at=at(2026, 3, 2, 9)))  # 30 days: not yet


def test_built_in_premium_is_top_tier_or_a_paid_plan() -> None:
    premium = built_in_segments("gold", ["plus"])[3]
    assert ok(premium, facts(tier="gold"))
    assert ok(premium, facts(tier="bronze", plans=frozenset({"plus"})))
    assert not ok(premium, facts(tier="silber", plans=frozenset({"free"})))
    nobody = built_in_segments(None, [])[3]
    assert not ok(nobody, facts(tier="gold", plans=frozenset({"plus"})))


def test_a_programme_segment_overrides_a_built_in_of_its_key() -> None:
    own = seg({"consent": "email"}).model_copy(update={"key": "active"})
    extra = seg({"consent": "sms"}).model_copy(update={"key": "sms-fans"})
    found = effective_segments([extra, own], None, [])
    assert [s.key for s in found] == ["new", "active", "inactive", "premium", "sms-fans"]
    assert found[1] is own


# --- what the facts must cover -------------------------------------------------------------


def test_needs_names_the_earliest_instant_any_condition_reads() -> None:
    n = needs(
        [
            seg({"purchases": {"min": 1, "within_days": 30, "weekdays": ["mon"]}}),
            seg({"spend": {"min": 1, "within_days": 90}}),
            seg({"consent": "email"}),
        ],
        today=TODAY,
        tz=BERLIN,
    )
    assert n.windowed
    assert not n.lines
    assert n.since == at(2026, 1, 1, 0)
    assert n.kinds == {"purchases", "spend", "consent"}
    assert needs([seg({"bought": {"skus": ["x"]}})], today=TODAY, tz=BERLIN).since is None
    totals = needs(built_in_segments("gold", ["plus"]), today=TODAY, tz=BERLIN)
    assert not totals.windowed  # the built-ins read only the members' totals


def test_facts_that_do_not_cover_a_window_are_a_bug_not_an_answer() -> None:
    defn = seg({"spend": {"min": 1, "within_days": 90}})
    with pytest.raises(ValueError, match="do not cover"):
        ok(defn, facts(since=datetime(2026, 3, 1, tzinfo=UTC)))


# --- CSV uploads and masking ---------------------------------------------------------------


def test_a_csv_with_a_header_names_the_kind_of_its_references() -> None:
    text = "\ufeffname;email\nMia;mia@example.org\n;\nBen;ben@example.org\nLeer;\n"
    assert member_references(text) == [
        CsvRow(2, "email:mia@example.org"),
        CsvRow(4, "email:ben@example.org"),
    ]
    assert member_references("card\n4711\n") == [CsvRow(2, "card:4711")]


def test_a_csv_without_a_header_holds_references() -> None:
    text = "mbr_01ABC\nphone:+4915112345678\nmia@example.org\n"
    assert [r.reference for r in member_references(text)] == [
        "mbr_01ABC",
        "phone:+4915112345678",
        "email:mia@example.org",
    ]
    with pytest.raises(ValueError, match="neither a member reference nor a header"):
        member_references("Vorname,Nachname\nMia,Schulz\n")
    assert member_references("") == []


def test_masking_keeps_a_sample_recognisable_but_not_readable() -> None:
    assert mask_name("Mia Schulz") == "M** S*****"
    assert mask_email("mia@example.org") == "m**@example.org"
    assert mask_email("a@b.de") == "a**@b.de"
    assert mask_name(None) is None
