"""Which sites may read the website widget: the programme's ``widget.origins`` (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from treu.programmes.model import WidgetSettings
from treu.web.widget import origin_allowed

LISTED = ["https://shop.kiezcafe.example"]
OWN = "https://treu.example"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # a same-origin GET or a server: the token alone decides
        ("https://treu.example", True),  # Treu's own pages (the demo page)
        ("https://shop.kiezcafe.example", True),
        ("https://SHOP.kiezcafe.example", True),
        ("http://shop.kiezcafe.example", False),  # another scheme is another origin
        ("https://shop.kiezcafe.example:8443", False),
        ("https://evil.example", False),
        ("null", False),  # a sandboxed frame or a file
    ],
)
def test_only_the_listed_shop_sites_and_treu_itself_may_read(
    origin: str | None, allowed: bool
) -> None:
    assert origin_allowed(origin, LISTED, OWN) is allowed


@pytest.mark.parametrize(
    "bad", ["shop.example", "https://shop.example/", "https://shop.example/konto", "*"]
)
def test_an_origin_is_scheme_host_and_port_only(bad: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        WidgetSettings(origins=[bad])


def test_origins_are_kept_in_lower_case() -> None:
    assert WidgetSettings(origins=["https://Shop.Example:8443"]).origins == [
        "https://shop.example:8443"
    ]
