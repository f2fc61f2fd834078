"""Property: no finding message ever carries the customer id, an email, phone or card number."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallConfig, PitfallEngine

_LOCAL = st.text(alphabet=string.ascii_lowercase + string.digits + "._", min_size=3, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum()
)
# "zq" never occurs in message text, so finding the local part in a message means it leaked.
_EMAILS = st.builds(
    lambda local, domain: f"zq{local}@{domain}.com", _LOCAL, st.sampled_from(["example", "corp"])
)
_CARDS = st.sampled_from(["4111111111111111", "5500 0000 0000 0004", "3782-822463-10005"])
_PHONES = st.sampled_from(["+1 (555) 123-4567", "+447700900123", "030 1234 5678"])


@settings(max_examples=60, deadline=None)
@given(email=_EMAILS, card=_CARDS, phone=_PHONES, prefix=st.sampled_from(["paid_", "called ", "Sent-", ""]))
def test_messages_never_echo_personal_data(email: str, card: str, phone: str, prefix: str) -> None:
    engine = PitfallEngine(PitfallConfig())
    calls = [
        Call("identify", email, data={"first_name": "J", "created_at": 1704067200000}),
        Call("track", email, prefix + email, data={}),
        Call("track", "user-1", prefix + card, data={}),
        Call("track", "user-1", prefix + phone, data={}),
        Call("pageview", email, "/u/" + email, data={}),
        Call("merge_customers", extra={"primary_id_type": "id", "primary_id": email}),
    ]
    local = email.split("@")[0]  # at least "zq" + 3 characters
    digits = "".join(ch for ch in card if ch.isdigit())
    for call in calls:
        findings, _ = engine.check_call(call)
        assert findings, call.method
        for finding in findings:
            text = finding.message
            assert local not in text
            assert email not in text
            assert digits[-8:] not in text.replace(" ", "").replace("-", "")
            assert phone not in text
