"""Pitfall 1, correct: the App API key for APIClient, the Track key for CustomerIO."""

import os

from customerio import APIClient, CustomerIO

api = APIClient(os.environ["CUSTOMERIO_APP_API_KEY"])
cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])
