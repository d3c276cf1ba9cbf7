from django.urls import path

from . import billing, bulk, cancellation_views, orders_cancel, upsert, views

app_name = "cancellations-api"

urlpatterns = [
    path("orders/", views.OrderListCreateView.as_view(), name="order-list"),
    path("orders/<int:id>/", views.OrderDetailView.as_view(), name="order-detail"),
    path(
        "order-cancellations/",
        cancellation_views.CancellationListCreateView.as_view(),
        name="cancellation-list",
    ),
    # Rebilly's path has no trailing slash; both spellings reach the same view.
    path(
        "order-cancellations/<str:id>",
        upsert.CancellationDetailView.as_view(),
        name="cancellation-detail",
    ),
    path(
        "order-cancellations/<str:id>/",
        upsert.CancellationDetailSlashView.as_view(),
        name="cancellation-detail-slash",
    ),
    path(
        "order-cancellations/<str:id>/revoke/",
        cancellation_views.CancellationRevokeView.as_view(),
        name="cancellation-revoke",
    ),
    path("orders/cancel/", orders_cancel.OrdersCancelView.as_view(), name="orders-cancel"),
    path(
        "bulk-cancellations/",
        bulk.BulkCancellationListView.as_view(),
        name="bulk-cancellation-list",
    ),
    path(
        "bulk-cancellations/<int:id>/",
        bulk.BulkCancellationDetailView.as_view(),
        name="bulk-cancellation-detail",
    ),
    path(
        "bulk-cancellations/<int:id>/results/",
        bulk.BulkCancellationResultsView.as_view(),
        name="bulk-cancellation-results",
    ),
    path(
        "service-items/cancel/",
        billing.ServiceItemsCancelView.as_view(),
        name="service-items-cancel",
    ),
]
