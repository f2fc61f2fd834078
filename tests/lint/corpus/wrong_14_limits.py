"""Pitfall 14: literal values over Customer.io's limits."""

from customerio import CustomerIO

cio = CustomerIO("site", "key")
LONG_NAME = (
    "checkout_completed_with_a_very_long_descriptive_suffix_that_nobody_will_ever_read_in_the_ui_at_all_ever"
)
BIO = "x" * 2000


def report(user_id: str) -> None:
    cio.track(user_id, LONG_NAME, data={})  # expect: CIO014
    cio.identify(
        user_id,
        email="a@example.com",
        about=(
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "  # expect: CIO014
            "tempor "
            "incididunt "
            "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullam"
            "co laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit"
            " in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat c"
            "upidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. Lore"
            "m ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut l"
            "abore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco l"
            "aboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
            "voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupid"
            "atat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. Lorem ip"
            "sum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labor"
            "e et dolore magna aliqua. Ut enim ad minim veniam."
        ),
    )
