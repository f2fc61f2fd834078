"""Pitfall 1: a Track API key given to the App API client (and the reverse)."""

import os

from customerio import APIClient, CustomerIO

api = APIClient(os.environ["CUSTOMERIO_TRACK_API_KEY"])  # expect: CIO001
api_too = APIClient(key=os.getenv("CIO_TRACK_KEY"))  # expect: CIO001
track_key = os.environ.get("CUSTOMERIO_TRACK_API_KEY", "")
api_three = APIClient(track_key)  # expect: CIO001
cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_APP_API_KEY"])  # expect: CIO001
