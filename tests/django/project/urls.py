from __future__ import annotations

from django.urls import include, path

from project import views

urlpatterns = [
    path("signup/<str:plan>/", views.signup),
    path("asignup/<str:plan>/", views.asignup),
    path("client/", views.per_request_client),
    path("scope/<int:item>/", views.scope),
    path("ascope/<int:item>/", views.ascope),
    path("healthz", views.healthz),
    path("", include("cioguard.django.urls")),
]
