from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from provisioning import pages
from provisioning.api import views
from provisioning.metrics.views import MetricsView

urlpatterns = [
    path("", pages.front_page, name="front-page"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("provisioning.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
]

# Errors outside a DRF view: the API's JSON error shape under /api/, Django's page elsewhere.
handler500 = "provisioning.api.errors.server_error"
