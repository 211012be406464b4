from rest_framework.permissions import DjangoModelPermissions


class ModelPermissionsIncludingView(DjangoModelPermissions):
    """DRF's model permissions, with the `view_` permission required for reads: patient data is never
    listed to a signed-in account that has no role giving it."""

    perms_map = DjangoModelPermissions.perms_map | {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }
