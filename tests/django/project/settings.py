"""A minimal Django project wired the way the README tells users to (tests only).

``TEST_CIOGUARD`` (JSON) becomes ``settings.CIOGUARD``; unset, cioguard is not instrumented at
start-up (the in-process tests instrument per test through the app's ``ready()``).
"""

from __future__ import annotations

import json
import os

SECRET_KEY = "cioguard-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "project.urls"
INSTALLED_APPS = ["cioguard.django"]
MIDDLEWARE = ["cioguard.django.CioGuardMiddleware"]
DATABASES: dict[str, object] = {}
USE_TZ = True
LOGGING_CONFIG = None
CIOGUARD = json.loads(os.environ["TEST_CIOGUARD"]) if os.environ.get("TEST_CIOGUARD") else None
