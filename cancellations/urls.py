from django.urls import path

from . import views

app_name = "staff"

urlpatterns = [
    path("orders/", views.order_list, name="order-list"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order-cancel"),
    path("cancellations/<str:pk>/", views.cancellation_detail, name="cancellation-detail"),
    path("cancellations/<str:pk>/revoke/", views.cancellation_revoke, name="cancellation-revoke"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery-retry"),
]
