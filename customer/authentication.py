"""The customer API's credential: "Authorization: Bearer <token>" from an order proof; no session, no CSRF."""

from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from customer.services import TokenInvalid, buyer_scope_from_token

KEYWORD = "Bearer"


class BuyerTokenAuthentication(authentication.BaseAuthentication):
    """request.user becomes the BuyerScope the token opens; request.auth the raw token."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the header Authorization: Bearer <token>."))
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("The token is not valid.")) from None
        try:
            scope = buyer_scope_from_token(token=token)
        except TokenInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return scope, token

    def authenticate_header(self, request) -> str:
        # Present, so an unauthenticated call is 401 (with this challenge), not 403.
        return f'{KEYWORD} realm="customer"'
