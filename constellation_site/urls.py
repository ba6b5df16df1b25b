"""HTTP routes: admin, frontend page and the constellation API."""

from django.contrib import admin
from django.urls import path

from quanta import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/constellation/info", views.constellation_info, name="constellation-info"),
    path("api/constellation/init", views.constellation_init, name="constellation-init"),
    path("api/constellation/update", views.constellation_update, name="constellation-update"),
]
