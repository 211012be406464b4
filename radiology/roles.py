"""The four roles of the platform, as Django groups with permissions.

A user holds one role. ROLE_PERMISSIONS is the single place that says what each role may do; the data
migration creates the groups and `sync_role_permissions` (run after every migrate) grants permissions of
models that later migrations add.
"""
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from radiology.choices import Role

ALL_PERMISSIONS = "*"

# Looking at archived studies (portal study pages, thumbnails, zip download).
_VIEW_IMAGES = ["archive.view_study", "archive.view_series", "archive.view_instance"]
# Sending studies to DICOM nodes and following those transfers.
_TRANSFER = ["archive.add_transferjob", "archive.view_transferjob"]

# Reading the order book: orders, their steps, the catalogue and the stations.
_VIEW_ORDERS = ["worklist.view_order", "worklist.view_scheduledprocedurestep", "worklist.view_proceduretype",
                "worklist.view_station"]

ROLE_PERMISSIONS = {
    # Clinicians place orders (the access rules limit them to their own patients and orders).
    Role.CLINICIAN: ["radiology.view_patient", *_VIEW_IMAGES, *_VIEW_ORDERS, "worklist.add_order",
                     "reporting.view_report", "reporting.view_addendum"],
    # Radiologists claim and release cases on the reading worklist (a change of the order).
    Role.RADIOLOGIST: ["radiology.view_patient", *_VIEW_IMAGES, *_TRANSFER, *_VIEW_ORDERS, "worklist.change_order",
                       "reporting.view_report", "reporting.add_report", "reporting.change_report",
                       "reporting.view_reportversion", "reporting.view_addendum", "reporting.add_addendum",
                       "reporting.view_reporttemplate", "reporting.view_macro", "reporting.add_macro",
                       "reporting.change_macro"],
    # Technologists also store images over the web (DICOMweb STOW-RS), as a modality does over DICOM; they run the
    # schedule (orders, steps) and resolve unmatched studies, which changes the archived study.
    Role.TECHNOLOGIST: ["radiology.view_patient", "radiology.change_patient", *_VIEW_IMAGES, *_TRANSFER,
                        "archive.add_instance", "archive.change_study", *_VIEW_ORDERS, "worklist.add_order",
                        "worklist.change_order", "worklist.add_scheduledprocedurestep",
                        "worklist.change_scheduledprocedurestep", "worklist.view_unmatchedstudy",
                        "worklist.change_unmatchedstudy", "worklist.view_performedprocedurestep"],
    Role.ADMINISTRATOR: ALL_PERMISSIONS,
}

# Roles whose members use the Django admin site.
STAFF_ROLES = {Role.ADMINISTRATOR}


def sync_role_permissions(apps):
    """Create the role groups and give each exactly its permissions; `apps` may be a migration's registry."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        if wanted == ALL_PERMISSIONS:
            permissions = Permission.objects.all()
        else:
            permissions = [
                permission
                for label in wanted
                for permission in Permission.objects.filter(
                    content_type__app_label=label.split(".")[0], codename=label.split(".")[1])
            ]
        group.permissions.set(permissions)


@receiver(post_migrate)
def sync_roles_after_migrate(sender, apps=None, **kwargs):
    # post_migrate runs once per app; the last call sees every permission. A flush (tests) sends no `apps`.
    from django.apps import apps as installed_apps

    sync_role_permissions(apps or installed_apps)


def user_role(user):
    """The role of a user (a Role), or None for anonymous users and users without one."""
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    for role in Role:
        if role.value in names:
            return role
    return None


def assign_role(user, role):
    """Make `role` the user's only role; administrators get access to the admin site."""
    from django.contrib.auth.models import Group

    role = Role(role)
    other_roles = Group.objects.filter(name__in=[r.value for r in Role if r != role])
    user.groups.remove(*other_roles)
    user.groups.add(Group.objects.get(name=role.value))
    user.is_staff = role in STAFF_ROLES
    user.save(update_fields=["is_staff"])


def role_context(request):
    """Template context: the signed-in user's role."""
    user = getattr(request, "user", None)
    role = user_role(user) if user is not None else None
    return {"user_role": role}
