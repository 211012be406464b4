from radiology.api.permissions import ModelPermissionsIncludingView


class ActionPermissions(ModelPermissionsIncludingView):
    """Model permissions, except that a viewset's extra actions name the permissions they need in
    `action_permissions` ({"schedule": ["worklist.change_scheduledprocedurestep"], …}): a POST to an action is
    not an "add", so DRF's method map would ask for the wrong permission."""

    def has_permission(self, request, view):
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is None:
            return super().has_permission(request, view)
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(required))
