"""Testing helpers: the local Customer.io emulator and its pytest fixture.

::

    from cioguard.testing import FakeCustomerIO

    with FakeCustomerIO() as fake:
        fake.client().track("u1", "signed_up")
        assert fake.events[0].name == "signed_up"

In pytest, request the ``fake_customerio`` fixture instead (registered by the ``pytest11`` entry
point). From a shell: ``cioguard emulator --port 8080``.
"""

from cioguard.testing.emulator import FakeCustomerIO
from cioguard.testing.records import Delivery, Device, Event, Merge, Person, RecordedRequest, TrackObject

__all__ = [
    "Delivery",
    "Device",
    "Event",
    "FakeCustomerIO",
    "Merge",
    "Person",
    "RecordedRequest",
    "TrackObject",
]
