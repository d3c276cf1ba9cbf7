"""Admin building blocks shared by the apps. Rows shown this way are written by services only,
so the admin shows them and never edits them."""

from django.contrib import admin


class ReadOnlyTabularInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ViewOnlyAdminMixin:
    """Viewable with the model's view permission; no add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
