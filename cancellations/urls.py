
app_name = "staff"

# Filled by the staff pages (views.py).
urlpatterns: list = []
