from django.urls import include, path
from rest_framework.routers import DefaultRouter

from provisioning.api import notifications, views

app_name = "api"

router = DefaultRouter()
router.register("requests", views.RequestViewSet, basename="request")
router.register("resources", views.ResourceViewSet, basename="resource")
router.register("stacks", views.StackViewSet, basename="stack")
router.register("notification-channels", notifications.NotificationChannelViewSet,
                basename="notification-channel")
router.register("quotas", views.QuotaViewSet, basename="quota")

urlpatterns = [
    path("resource-types/", views.ResourceTypeList.as_view(), name="resource-types"),
    path("environments/", views.EnvironmentList.as_view(), name="environments"),
    path("blueprints/", views.BlueprintList.as_view(), name="blueprints"),
    path("", include(router.urls)),
]
