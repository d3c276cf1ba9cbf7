from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import health, metrics, views
from .security import swagger_ui_view

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    # For load balancers and orchestrators: no login, no secrets (backoffice.health).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("staff/", include("cancellations.urls")),
    path("api/v1/oms/", include("reasons.api.urls")),
    path("api/v1/", include("cancellations.api.urls")),
    path("callisto/", include("providers.inbound_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", swagger_ui_view(), name="api-docs"),
]

# A lost database connection outside any view is a 503 too (backoffice.middleware).
handler500 = "backoffice.middleware.server_error"
# A path no view matches is a problem object under /api/ and /callisto/ (backoffice.views).
handler404 = "backoffice.views.not_found"
# So is what Django refuses as a bad request (an oversize body is a 413 there).
handler400 = "backoffice.views.bad_request"
