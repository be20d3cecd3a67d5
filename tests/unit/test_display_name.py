"""The display-name rule (domain/naming.py normalize_display_name) and how a name is filled into
Cognito's messages: HTML-escaped in the email bodies (Cognito sends them as HTML), as it is in
the subjects and SMS, and always within the botocore model's patterns and lengths."""

from __future__ import annotations

import botocore.session
import pytest

from adapters.aws.cognito_requests import mfa_request, user_pool_request
from adapters.aws.param_check import check_params
from domain.errors import InvalidInput
from domain.naming import DISPLAY_NAME_MAX_LENGTH, normalize_display_name
from domain.tiers import render_message
from tests.unit.test_tier_template_fields import SNS_ROLE, ok

MODEL = botocore.session.get_session().get_service_model("cognito-idp")

# Control (Cc), format (Cf: bidi overrides and isolates, zero-width characters, BOM, soft
# hyphen), line and paragraph separators (Zl, Zp), private use (Co), a lone surrogate (Cs).
REFUSED = [
    "\x00", "\x07", "\x1b", "\x7f", "\x85", "\t", "\n", "\r",
    "\u200b", "\u200d", "\u200e", "\u202e", "\u2066", "\u2069", "\ufeff", "\u00ad",
    "\u2028", "\u2029", "\ue000", "\ud800",
]


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
@pytest.mark.parametrize("where", ["inside", "leading", "trailing"])
def test_control_and_format_characters_are_refused_anywhere(char: str, where: str) -> None:
    name = {"inside": f"a{char}b", "leading": f"{char}Acme", "trailing": f"Acme{char}"}[where]
    with pytest.raises(InvalidInput) as caught:
        normalize_display_name(name)
    assert caught.value.field == "display_name"
    assert f"U+{ord(char):04X}" in caught.value.message


def test_the_reported_case_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_display_name("a\u0000b<script>")
    assert caught.value.field == "display_name"


@pytest.mark.parametrize("name", ["", " ", "   ", "\u00a0", " \u3000 ", "\u2003"])
def test_empty_or_whitespace_only_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_display_name(name)
    assert caught.value.field == "display_name"


def test_surrounding_whitespace_is_trimmed_and_inner_spaces_kept() -> None:
    assert normalize_display_name("  Acme  Corp ") == "Acme  Corp"
    assert normalize_display_name("\u00a0Acme\u3000") == "Acme"
    assert normalize_display_name("Acme") == "Acme"


def test_the_length_limit_counts_the_trimmed_name() -> None:
    longest = "x" * DISPLAY_NAME_MAX_LENGTH
    assert normalize_display_name(f"  {longest} ") == longest
    with pytest.raises(InvalidInput, match=f"{DISPLAY_NAME_MAX_LENGTH}"):
        normalize_display_name(longest + "x")


@pytest.mark.parametrize("name", ["Acme & Sons", 'Bob\'s "<b>Bakery</b>"', "株式会社\u3000アクメ", "Café\u00a0Noir", "Acme 🚀", "Ünïcödé"])
def test_ordinary_names_are_kept_as_given(name: str) -> None:
    assert normalize_display_name(name) == name


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_display_name(None)
    assert caught.value.field == "display_name"


# -- the name in Cognito's messages -----------------------------------------------------------------


def _sms_template(email_method: str = "code") -> object:
    body = "Welcome to {{display_name}}. " + ("{##Confirm##}" if email_method == "link" else "Code {####}")
    return ok(
        mfa="OPTIONAL",
        mfa_methods=["TOTP", "SMS"],
        auto_verified_attributes=["email"],
        sms={"sns_caller_arn": SNS_ROLE, "mfa_message": "{{display_name}} sign-in code {####}"},
        verification={
            "email_method": email_method,
            "email_subject": "Your {{display_name}} code",
            "email_message": body,
            "sms_message": "{{display_name}} code {####}",
        },
        invitation={
            "email_subject": "Your {{display_name}} account",
            "email_message": "Join {{display_name}}: {username} / {####}",
            "sms_message": "{{display_name}}: {username} / {####}",
        },
    )


NAME = 'Tom & Jerry\'s "<b>Cheese</b>"'
ESCAPED = "Tom &amp; Jerry&#x27;s &quot;&lt;b&gt;Cheese&lt;/b&gt;&quot;"


@pytest.mark.parametrize("email_method", ["code", "link"])
def test_email_bodies_get_the_escaped_name_subjects_and_sms_the_raw_one(email_method: str) -> None:
    template = _sms_template(email_method)
    params = user_pool_request(name="p", template=template, tags={}, display_name=NAME, tenant_id="acme")  # type: ignore[arg-type]
    verification = params["VerificationMessageTemplate"]
    invite = params["AdminCreateUserConfig"]["InviteMessageTemplate"]
    body_key, subject_key = ("EmailMessageByLink", "EmailSubjectByLink") if email_method == "link" else ("EmailMessage", "EmailSubject")
    assert verification[body_key].startswith(f"Welcome to {ESCAPED}. ")
    assert invite["EmailMessage"] == f"Join {ESCAPED}: {{username}} / {{####}}"
    assert verification[subject_key] == f"Your {NAME} code"
    assert invite["EmailSubject"] == f"Your {NAME} account"
    assert verification["SmsMessage"] == f"{NAME} code {{####}}"
    assert invite["SMSMessage"] == f"{NAME}: {{username}} / {{####}}"
    assert params["SmsAuthenticationMessage"] == f"{NAME} sign-in code {{####}}"
    mfa = mfa_request(pool_id="us-east-1_abc", template=template, display_name=NAME, tenant_id="acme")  # type: ignore[arg-type]
    assert mfa["SmsMfaConfiguration"]["SmsAuthenticationMessage"] == f"{NAME} sign-in code {{####}}"


def test_a_long_name_is_shortened_before_it_is_escaped() -> None:
    """The shortening rule of subjects and SMS still holds, and in an HTML body the cut never
    falls inside an entity (&amp; stays whole)."""
    name = "&" * DISPLAY_NAME_MAX_LENGTH
    sms = render_message("Your {{display_name}} code is {####}", {"display_name": name, "tenant_id": "acme"}, 140)
    assert len(sms) <= 140 and sms.startswith("Your &&&") and sms.endswith("... code is {####}")
    html = render_message("{{display_name}} {####}", {"display_name": name, "tenant_id": "acme"}, 140, medium="html")
    assert len(html) <= 140 and html.endswith("... {####}")
    assert html[: -len("... {####}")] == "&amp;" * (html.count("&amp;"))


@pytest.mark.parametrize("name", ["Acme & Sons", NAME, "株式会社\u3000アクメ", "Café\u00a0Noir", "Acme 🚀", "x" * DISPLAY_NAME_MAX_LENGTH, "<" * 128])
@pytest.mark.parametrize("email_method", ["code", "link"])
def test_every_accepted_name_fills_messages_that_aws_accepts(name: str, email_method: str) -> None:
    """Whatever the rule lets through renders into every message field within the botocore
    model's pattern and length (email subjects and bodies refuse Unicode spaces other than
    U+0020: they become plain spaces there)."""
    template = _sms_template(email_method)
    accepted = normalize_display_name(name)
    params = user_pool_request(name="p", template=template, tags={}, display_name=accepted, tenant_id="acme")  # type: ignore[arg-type]
    check_params(params, MODEL.operation_model("CreateUserPool"))
    mfa = mfa_request(pool_id="us-east-1_abc", template=template, display_name=accepted, tenant_id="acme")  # type: ignore[arg-type]
    check_params(mfa, MODEL.operation_model("SetUserPoolMfaConfig"))


@pytest.mark.parametrize("name", ["Acme {####}", "x {username} y", "{##click here##}", "Acme {{tenant_id}}", "{USERNAME}"])
def test_a_message_placeholder_in_the_name_is_refused(name: str) -> None:
    # Cognito fills these into the messages the name is rendered into: the name would change them.
    with pytest.raises(InvalidInput) as refused:
        normalize_display_name(name)
    assert refused.value.field == "display_name" and "placeholder" in str(refused.value)


def test_braces_that_are_no_placeholder_are_kept() -> None:
    assert normalize_display_name("Acme {Beta} #1") == "Acme {Beta} #1"
