"""Who may use DICOMweb: an API token (`Authorization: Token <key>`, service accounts) or a signed-in session,
and a role permission per operation. Nothing with patient data is served anonymously."""
from functools import wraps

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def dicomweb_endpoint(permission):
    """Decorate a DICOMweb view: authenticate (token first, then session), check `permission`, answer 401/403
    as JSON otherwise. Session requests that change data (STOW-RS) must carry the CSRF token like any form."""
    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                token_auth = TokenAuthentication().authenticate(request)
            except AuthenticationFailed as exc:
                return _unauthorized(str(exc.detail))
            if token_auth is not None:
                request.user = token_auth[0]
            elif not request.user.is_authenticated:
                return _unauthorized("Authentication credentials were not provided.")
            elif request.method not in SAFE_METHODS:
                refusal = CsrfViewMiddleware(lambda _: None).process_view(request, None, (), {})
                if refusal is not None:
                    return JsonResponse({"detail": "CSRF check failed."}, status=403)
            if not request.user.has_perm(permission):
                return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
            return view(request, *args, **kwargs)
        return wrapper
    return decorate


def _unauthorized(detail):
    response = JsonResponse({"detail": detail}, status=401)
    response["WWW-Authenticate"] = "Token"
    return response
