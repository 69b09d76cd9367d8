"""KRP's URLs and the floor view at /bench/floor/."""

from django.urls import path

from bench.floor import FloorView
from krp_project.urls import handler500  # noqa: F401
from krp_project.urls import urlpatterns as krp_urlpatterns

urlpatterns = [*krp_urlpatterns, path("bench/floor/", FloorView.as_view(), name="bench-floor")]
