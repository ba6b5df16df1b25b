"""HTTP routes: admin, frontend page and the constellation API."""

from django.contrib import admin
from django.urls import path, re_path

from constellation_site import health, join_views, metrics, status_page
from constellation_site import views as site_views
from constellation_site.admin_login import throttled_login
from payments import views as payment_views
from quanta import views

urlpatterns = [
    path("", site_views.index, name="index"),
    re_path(r"^static/(?P<path>.+)$", site_views.static_asset, name="static"),
    path("metrics", metrics.metrics, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("status/", status_page.status_page, name="status-page"),
    path("api/constellation/status", status_page.node_status, name="constellation-status"),
    path(
        "api/constellation/status/all",
        status_page.constellation_status,
        name="constellation-status-all",
    ),
    path("api/faucet", payment_views.faucet, name="faucet"),
    path("api/constellation/nodes", site_views.constellation_nodes, name="constellation-nodes"),
    path("admin/login/", throttled_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/constellation/info", views.constellation_info, name="constellation-info"),
    path(
        "api/constellation/settings-chain",
        views.settings_chain,
        name="constellation-settings-chain",
    ),
    path("api/constellation/snapshot", join_views.snapshot, name="constellation-snapshot"),
    path("api/constellation/quanta", join_views.quanta, name="constellation-quanta"),
    path(
        "api/constellation/attestation",
        join_views.attestation,
        name="constellation-attestation",
    ),
    path("api/constellation/init", views.constellation_init, name="constellation-init"),
    path("api/constellation/update", views.constellation_update, name="constellation-update"),
    path("api/constellation/reserves", payment_views.reserves, name="constellation-reserves"),
]
