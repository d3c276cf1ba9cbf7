from rest_framework.routers import SimpleRouter

from .views import CancellationReasonViewSet

router = SimpleRouter()
router.register("cancellation-reasons", CancellationReasonViewSet, basename="cancellation-reason")

urlpatterns = router.urls
