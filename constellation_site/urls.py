"""HTTP routes: admin, frontend page and the constellation API."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
