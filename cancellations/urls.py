from django.urls import path

from . import bulk_views, dashboard_views, delivery_views, views

app_name = "staff"

urlpatterns = [
    path("dashboard/", dashboard_views.dashboard_page, name="dashboard"),
    path("dashboard/cancellations.csv", dashboard_views.dashboard_csv, name="dashboard-csv"),
    path("orders/", views.order_list, name="order-list"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order-cancel"),
    path(
        "orders/<int:pk>/deliveries/",
        delivery_views.order_delivery_status,
        name="order-deliveries",
    ),
    path("cancellations/<str:pk>/", views.cancellation_detail, name="cancellation-detail"),
    path("cancellations/<str:pk>/revoke/", views.cancellation_revoke, name="cancellation-revoke"),
    path(
        "cancellations/<str:pk>/deliveries/",
        delivery_views.delivery_status,
        name="cancellation-deliveries",
    ),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery-retry"),
    path("deliveries/<int:pk>/resolve/", views.delivery_resolve, name="delivery-resolve"),
    path("bulk/", bulk_views.bulk_list, name="bulk-list"),
    path("bulk/new/", bulk_views.bulk_new, name="bulk-new"),
    path("bulk/<int:pk>/", bulk_views.bulk_detail, name="bulk-detail"),
    path("bulk/<int:pk>/progress/", bulk_views.bulk_progress, name="bulk-progress"),
]
