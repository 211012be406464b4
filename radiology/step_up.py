"""Step-up authentication: acts that carry a signature (signing a report, an addendum) ask the user to prove
again who they are, whatever their session says.

Until the security issue brings TOTP devices this is the account password; `verify_step_up` is the one place
that will then also accept (and require) the second factor.
"""


class StepUpFailed(Exception):
    """The credential given for a step-up check is wrong or missing."""


def verify_step_up(user, password):
    if not password or not user.check_password(password):
        raise StepUpFailed("your password is needed again to sign, and the one given is not right")
