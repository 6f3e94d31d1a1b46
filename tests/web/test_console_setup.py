"""Programme set-up in the console, without a browser: each form's errors land next to their
field, nothing is saved from an invalid form, a save is one new revision in force, a cashier
may not, and a post without the form's token is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from web_support import Cafe, make_cafe

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import simulate_purchase
from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter
from treu.auth.model import StaffRole
from treu.auth.staff import add_staff_user
from treu.errors import Conflict, ErrorCode
from treu.programmes.model import DocumentError, ProgrammeDocument, check_document
from treu.programmes.service import apply_programme, load_programme
from treu.storage.uow import UnitOfWork
from treu.web.setup_forms import RULES, TIER_LEVELS, build_item, form_values, place_errors

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REVISION = re.compile(r'name="revision" value="([^"]+)"')


@pytest.fixture(scope="module")
def app(engine: Engine) -> FastAPI:
    made = create_app(engine)
    made.state.rate_limiter = RateLimiter(per_key="100000/minute", per_address="100000/minute")
    return made


@pytest.fixture
def cafe(engine: Engine) -> Cafe:
    return make_cafe(engine, "http://testserver")


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as made:
        yield made


def log_in(client: TestClient, cafe: Cafe, role: StaffRole) -> str:
    """Logs ``role`` in; the set-up's address."""
    email = f"{role.value}@{cafe.tenant_key}.example"
    with UnitOfWork(cafe.engine) as uow:
        add_staff_user(uow, tenant_id=cafe.tenant_id, email=email, role=role, password=PASSWORD)
    console = f"/console/{cafe.tenant_key}"
    token = CSRF.findall(client.get(f"{console}/login").text)[0]
    sent = client.post(
        f"{console}/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert sent.status_code == 303, sent.text
    return f"{console}/kiezcafe/setup"


def form(client: TestClient, url: str) -> dict[str, str]:
    """The hidden fields of the form page at ``url`` (its token and revision)."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    return {"csrf_token": CSRF.findall(page.text)[0], "revision": REVISION.findall(page.text)[0]}


def rule_form(**changed: str) -> dict[str, str]:
    values = {
        "key": "punkte",
        "name": "1 Punkt je Euro",
        "effect.type": "per_amount",
        "effect.points": "1",
        "effect.per": "1.00",
        "when.activity": "purchase",
        "stacking": "stack",
    }
    return {**values, **changed}


def revisions(cafe: Cafe) -> tuple[str, ProgrammeDocument]:
    with UnitOfWork(cafe.engine) as uow:
        programme = load_programme(uow, cafe.programme_id)
    return programme.revision_id, programme.document


# --- the pure part -------------------------------------------------------------------------


def test_an_error_deep_in_a_rule_belongs_to_its_input_and_others_go_elsewhere() -> None:
    errors = [
        DocumentError("rules.2.effect.points", "Input should be greater than 0", "greater_than"),
        DocumentError("rules.2.when.include.categories.0", "Input should be a valid string"),
        DocumentError("rules.2.caps.per_member.month", "Input should be greater than 0"),
        DocumentError("rules.2", "rules on actions give fixed or bonus points"),
        DocumentError("stamp_cards.0.reward", "unknown reward 'kaffee'"),
        DocumentError("rules.1.key", "'x' is used twice"),
    ]
    placed = place_errors(RULES, 2, errors)
    assert set(placed.fields) == {"effect.points", "when.include.categories", "advanced"}
    assert placed.fields["advanced"].path == "caps.per_member.month"
    assert [e.message for e in placed.item] == ["rules on actions give fixed or bonus points"]
    assert [e.path for e in placed.elsewhere] == ["stamp_cards.0.reward", "rules.1.key"]


def test_a_form_keeps_the_options_it_does_not_show_in_the_advanced_text() -> None:
    rule = {
        "key": "bewertung",
        "name": "Bewertung",
        "when": {"activity": "action", "action_types": ["review"], "channels": []},
        "effect": {"type": "fixed", "points": 10},
        "caps": {"per_member": {"month": 10}, "per_activity": None},
    }
    values = form_values(RULES, rule)
    assert values["when.action_types"] == "review"
    assert values["effect.per"] == ""
    assert values["advanced"] == "caps:\n  per_member:\n    month: 10\n"
    values["effect.points"] = " 12 "
    values["effect.factor"] = "3"  # not sent for a "fixed" effect
    built = build_item(RULES, values, rule)
    assert built.errors == {}
    assert built.item["effect"] == {"type": "fixed", "points": "12"}
    assert built.item["caps"] == {"per_member": {"month": 10}}
    assert built.item["when"] == {"activity": "action", "action_types": ["review"]}


def test_a_tier_error_found_across_the_levels_names_the_level() -> None:
    doc = {"key": "p", "name": "P", "currency": "EUR", "timezone": "Europe/Berlin"}
    doc["tiers"] = {"levels": [{"key": "a", "name": "A", "threshold": 5}]}
    found, errors = check_document(doc)
    assert found is None
    assert [e.path for e in errors] == ["tiers.levels.0.threshold"]
    assert place_errors(TIER_LEVELS, 0, errors).fields["threshold"].message == (
        "the first (lowest) tier starts at 0"
    )


def test_a_draft_document_is_simulated_without_being_applied(cafe: Cafe) -> None:
    _revision, doc = revisions(cafe)
    data = doc.model_dump(mode="json", by_alias=True)
    data["rules"][0]["effect"]["points"] = 3
    draft, errors = check_document(data)
    assert draft is not None, errors
    purchase = PurchaseIn(
        external_id="x",
        currency="EUR",
        lines=[LineIn(sku="A", category="Kuchen", unit_price=Decimal("4.50"))],
    )
    with UnitOfWork(cafe.engine) as uow:
        under_draft = simulate_purchase(
            uow, programme_id=cafe.programme_id, purchase=purchase, draft=draft
        )
        in_force = simulate_purchase(uow, programme_id=cafe.programme_id, purchase=purchase)
    assert [a.points for a in under_draft] == [13]  # 3 x 4.50, rounded down
    assert [a.points for a in in_force] == [4]


def test_a_document_edited_from_an_older_revision_is_not_applied(cafe: Cafe) -> None:
    first, doc = revisions(cafe)
    data = doc.model_dump(mode="json", by_alias=True)
    with UnitOfWork(cafe.engine) as uow:
        apply_programme(
            uow, tenant_id=cafe.tenant_id, document={**data, "name": "A"}, based_on=first
        )
    with UnitOfWork(cafe.engine) as uow, pytest.raises(Conflict) as refused:
        apply_programme(
            uow, tenant_id=cafe.tenant_id, document={**data, "name": "B"}, based_on=first
        )
    assert refused.value.code is ErrorCode.PROGRAMME_CHANGED
    assert revisions(cafe)[1].name == "A"


# --- the pages -----------------------------------------------------------------------------


def test_a_rule_with_an_error_is_shown_again_with_the_message_and_nothing_is_saved(
    client: TestClient, cafe: Cafe
) -> None:
    setup = log_in(client, cafe, StaffRole.MANAGER)
    before = revisions(cafe)
    hidden = form(client, f"{setup}/rules/item/punkte")
    sent = client.post(
        f"{setup}/rules/item/punkte", data={**hidden, **rule_form(**{"effect.points": "0"})}
    )
    assert sent.status_code == 422
    assert 'id="f-effect-points-error">Muss größer als 0 sein.<' in sent.text
    assert 'name="effect.points" value="0"' in sent.text  # what was typed stays
    assert revisions(cafe) == before

    sent = client.post(
        f"{setup}/rules/item/punkte", data={**hidden, **rule_form(**{"effect.points": "2"})}
    )
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("/setup?saved=2")
    revision, doc = revisions(cafe)
    assert revision != before[0]
    assert doc.rules[0].effect.points == 2  # type: ignore[union-attr]
    assert doc.rules[1] == before[1].rules[1]  # the other rule as it was


def test_the_messages_are_german_for_a_german_programme(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.OWNER)
    hidden = form(client, f"{setup}/rewards/new")
    sent = client.post(
        f"{setup}/rewards/new",
        data={**hidden, "key": "Große Tasse", "name": "", "kind": "free_product", "cost": "zehn"},
    )
    assert sent.status_code == 422
    assert "Nur Kleinbuchstaben, Ziffern, - und _, z. B. kaffee-karte." in sent.text
    assert 'id="f-cost-error">Eine ganze Zahl, z. B. 10.<' in sent.text
    assert 'id="f-name-error">Bitte ausfüllen.<' in sent.text


def test_deleting_a_reward_a_stamp_card_gives_is_refused_with_the_reason(
    client: TestClient, cafe: Cafe
) -> None:
    setup = log_in(client, cafe, StaffRole.MANAGER)
    before = revisions(cafe)
    sent = client.post(f"{setup}/rewards/item/gratis-kaffee/delete", data=form(client, setup))
    assert sent.status_code == 422
    assert "stamp_cards.0.reward" in sent.text
    assert revisions(cafe) == before


def test_a_form_from_an_older_revision_is_refused(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.MANAGER)
    hidden = form(client, f"{setup}/returns")
    first = client.post(
        f"{setup}/returns", data={**hidden, "policy": "allow_negative", "claim_window_days": "14"}
    )
    assert first.status_code == 303
    again = client.post(
        f"{setup}/returns", data={**hidden, "policy": "within_balance", "claim_window_days": "30"}
    )
    assert again.status_code == 422
    assert "seit dieses Formular geöffnet wurde" in again.text
    assert revisions(cafe)[1].returns.policy == "allow_negative"


@pytest.mark.parametrize(
    "path",
    ["", "/rules/new", "/rules/item/punkte", "/expiry", "/referral", "/tier-levels/new"],
)
def test_a_cashier_may_not_open_the_set_up(client: TestClient, cafe: Cafe, path: str) -> None:
    setup = log_in(client, cafe, StaffRole.CASHIER)
    assert client.get(setup + path).status_code == 403


def test_a_cashier_may_not_save_the_set_up(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.CASHIER)
    before = revisions(cafe)
    till = client.get(f"/console/{cafe.tenant_key}/kiezcafe/till")  # a page a cashier may see
    token = CSRF.findall(till.text)[0]
    for path, data in [
        ("/rules/item/punkte", rule_form(**{"effect.points": "5"})),
        ("/rules/item/punkte/delete", {}),
        ("/referral/delete", {}),
    ]:
        sent = client.post(setup + path, data={**data, "csrf_token": token, "revision": before[0]})
        assert sent.status_code == 403, path
    assert revisions(cafe) == before


def test_a_post_without_the_form_token_is_refused(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.OWNER)
    before = revisions(cafe)
    hidden = form(client, f"{setup}/rules/item/punkte")
    for token in ("", "forged.token"):
        sent = client.post(
            f"{setup}/rules/item/punkte",
            data={**hidden, "csrf_token": token, **rule_form(**{"effect.points": "5"})},
        )
        assert sent.status_code == 403
    assert revisions(cafe) == before


def test_the_basket_preview_shows_both_and_saves_nothing(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.MANAGER)
    before = revisions(cafe)
    hidden = form(client, f"{setup}/rules/item/punkte")
    basket = {"basket.category.0": "Kuchen", "basket.quantity.0": "2", "basket.price.0": "3,90"}
    sent = client.post(
        f"{setup}/rules/item/punkte",
        data={**hidden, **rule_form(**{"effect.points": "3"}), **basket, "do": "preview"},
    )
    assert sent.status_code == 200, sent.text
    assert 'id="preview-draft">Mit dieser Regel: 23 Punkte<' in sent.text
    assert 'id="preview-current">Mit den geltenden Regeln: 7 Punkte<' in sent.text
    assert revisions(cafe) == before


def test_referral_expiry_and_a_tier_level_are_set_up_by_form(
    client: TestClient, cafe: Cafe
) -> None:
    setup = log_in(client, cafe, StaffRole.OWNER)
    hidden = form(client, setup)
    assert client.post(f"{setup}/referral/delete", data=hidden).status_code == 303
    assert revisions(cafe)[1].referral is None
    hidden = form(client, f"{setup}/referral")
    referral = {"referrer_reward.points": "50", "friend_reward.reward": "kuchen"}
    assert client.post(f"{setup}/referral", data={**hidden, **referral}).status_code == 303
    hidden = form(client, f"{setup}/expiry")
    expiry = {"type": "inactivity", "months": "18", "days": "99"}  # days: not for inactivity
    assert client.post(f"{setup}/expiry", data={**hidden, **expiry}).status_code == 303
    hidden = form(client, f"{setup}/tier-levels/new")
    level = {"key": "gold", "name": "Gold", "threshold": "500", "earn_multiplier": "1,5"}
    assert client.post(f"{setup}/tier-levels/new", data={**hidden, **level}).status_code == 303
    _revision, doc = revisions(cafe)
    assert doc.referral is not None
    assert doc.referral.referrer_reward is not None
    assert doc.referral.referrer_reward.points == 50
    assert doc.referral.friend_reward is not None
    assert doc.referral.friend_reward.reward == "kuchen"
    assert (doc.expiry.type, doc.expiry.months, doc.expiry.days) == ("inactivity", 18, None)
    assert doc.tiers is not None
    assert doc.tiers.keys() == ("stammgast", "kiezheld", "gold")
    assert doc.tiers.levels[-1].earn_multiplier == Decimal("1.5")  # typed with a comma


def test_saving_a_form_unchanged_makes_no_revision(client: TestClient, cafe: Cafe) -> None:
    setup = log_in(client, cafe, StaffRole.MANAGER)
    before = revisions(cafe)
    page = client.get(f"{setup}/stamp-cards/item/kaffeekarte").text
    values = dict(re.findall(r'<input type="text" id="[^"]+" name="([^"]+)" value="([^"]*)"', page))
    values.update(
        re.findall(
            r'<select id="[^"]+" name="([^"]+)">.*?<option value="([^"]*)" selected', page, re.S
        )
    )
    sent = client.post(
        f"{setup}/stamp-cards/item/kaffeekarte",
        data={**form(client, setup), **values, "carry_over": "on"},
    )
    assert sent.headers["location"].endswith("/setup?unchanged=1"), sent.text
    assert revisions(cafe) == before
