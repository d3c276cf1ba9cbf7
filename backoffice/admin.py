"""The admin site's name, and the staff profile edited together with its user."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from .models import StaffProfile

admin.site.site_header = _("Storno")
admin.site.site_title = _("Storno")
admin.site.index_title = _("Storno")
# The app list beside every page leaves a 1366 px screen too little room for the change lists'
# tables; the breadcrumbs and the admin's home page lead to every model all the same.
admin.site.enable_nav_sidebar = False

User = get_user_model()


class StaffProfileInline(admin.StackedInline):
    """What Storno keeps per staff user: the Salesforce user id sent to Callisto as UserId, and
    the time zone the pages show times in."""

    model = StaffProfile
    fields = ["salesforce_user_id", "time_zone"]
    can_delete = False
    max_num = 1
    verbose_name_plural = _("staff profile")


class StaffUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, StaffProfileInline]


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, StaffUserAdmin)
