"""REST API v1 for print bridges: claim a job, acknowledge it, list the warehouse's bridge printers (bearer token)."""

from __future__ import annotations

import base64

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from oms.api_errors import ApiErrorSerializer
from oms.api_schema import StrictInputSerializer
from oms.throttles import PrintBridgeRateThrottle
from printing import selectors, services
from printing.exceptions import BridgeAuthFailed
from printing.models import PrintBridge, Printer, PrintJob

ERROR = OpenApiResponse(ApiErrorSerializer, description="JSON error: {code, message, errors?}")
AUTH_ERRORS = {401: OpenApiResponse(ApiErrorSerializer,
                                    description="Missing, unknown or disabled bridge token: {code, message}")}


# --- Authentication -------------------------------------------------------------------------------


class BridgeTokenRejected(exceptions.AuthenticationFailed):
    # The API error handler uses default_code as the JSON "code" of exceptions it has no entry for.
    default_code = BridgeAuthFailed.code


class BridgeTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` of a print bridge. The bridge is ``request.auth``; there is no
    user (``request.user`` is anonymous) and no session, hence no CSRF."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # the permission then answers 401 not_authenticated
        if len(header) != 2:
            raise BridgeTokenRejected("Invalid Authorization header: send 'Bearer <token>'.")
        try:
            token = header[1].decode()
        except UnicodeDecodeError:
            raise BridgeTokenRejected("Invalid Authorization header: the token is not text.") from None
        try:
            bridge = services.bridge_authenticate(token=token)
        except BridgeAuthFailed as exc:
            raise BridgeTokenRejected(exc.message) from exc
        return AnonymousUser(), bridge

    def authenticate_header(self, request) -> str:
        # Present on 401 answers; without it DRF would turn "not authenticated" into a 403.
        return f'{self.keyword} realm="print-bridge"'


class BridgeTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bridge token in the OpenAPI schema (drf-spectacular finds it by target_class)."""

    target_class = "printing.api.BridgeTokenAuthentication"
    name = "printBridgeToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class IsPrintBridge(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, PrintBridge)


class BridgeAPIView(APIView):
    authentication_classes = [BridgeTokenAuthentication]
    permission_classes = [IsPrintBridge]
    parser_classes = [JSONParser]  # the bridge speaks JSON only
    # Its own, higher limit per bridge instead of the staff one: a bridge clears hundreds of jobs a minute.
    throttle_classes = [PrintBridgeRateThrottle]

    @property
    def bridge(self) -> PrintBridge:
        return self.request.auth


# --- Serializers (names prefixed with Bridge: they are schema component names) ---------------------


class BridgePrinterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Printer
        fields = ["code", "name", "host", "port", "paper_width"]


class BridgeJobSerializer(serializers.ModelSerializer):
    printer = BridgePrinterSerializer(read_only=True)
    payload_b64 = serializers.SerializerMethodField(
        help_text="The ESC/POS bytes to send as they are, base64."
    )

    class Meta:
        model = PrintJob
        fields = ["id", "kind", "printer", "payload_b64", "attempts"]

    @extend_schema_field(OpenApiTypes.BYTE)
    def get_payload_b64(self, job: PrintJob) -> str:
        return base64.b64encode(bytes(job.payload)).decode("ascii")


class BridgeClaimSerializer(serializers.Serializer):
    job = BridgeJobSerializer(read_only=True)


class BridgeAckSerializer(StrictInputSerializer):
    ok = serializers.BooleanField(
        help_text="true: the printer took the bytes; false: it could not be reached."
    )
    # No max_length: a long error must not make the failure report bounce; the service keeps 300 characters.
    error = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=True,
        help_text="Why the job could not be sent (with ok=false).",
    )


class BridgeAckResultSerializer(serializers.Serializer):
    # A plain string rather than a choice field: a second "status" enum in the schema collides with the
    # order status enums (drf-spectacular warns) until ENUM_NAME_OVERRIDES names them.
    status = serializers.CharField(help_text="printed, or queued (again, with a backoff) after a failure.")


# --- Views ----------------------------------------------------------------------------------------


@extend_schema(tags=["print bridge"])
class BridgeClaimView(BridgeAPIView):
    @extend_schema(
        operation_id="print_bridge_claim",
        request=None,
        responses={
            200: BridgeClaimSerializer,
            204: OpenApiResponse(description="No job is due."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request):
        """Claim the oldest due job of a bridge printer in this bridge's warehouse. The job is this bridge's
        for 60 seconds: send the bytes, then acknowledge. Two bridges never receive the same job."""
        job = services.bridge_claim(bridge=self.bridge)
        if job is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(BridgeClaimSerializer({"job": job}).data)


@extend_schema(tags=["print bridge"])
class BridgeAckView(BridgeAPIView):
    @extend_schema(
        operation_id="print_bridge_ack",
        request=BridgeAckSerializer,
        responses={
            200: BridgeAckResultSerializer,
            400: ERROR,
            **AUTH_ERRORS,
            403: OpenApiResponse(ApiErrorSerializer, description="The job belongs to another warehouse."),
            404: OpenApiResponse(ApiErrorSerializer, description="No such job."),
            409: OpenApiResponse(ApiErrorSerializer,
                                 description="This bridge does not hold the job (its lease expired)."),
        },
    )
    def post(self, request, job_id: int):
        """Report the outcome of a claimed job: printed, or not sent (the job is queued again with a
        backoff and the printer is marked off-line)."""
        body = BridgeAckSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job_status = services.bridge_ack(
            bridge=self.bridge,
            job_id=job_id,
            ok=body.validated_data["ok"],
            error=body.validated_data["error"],
        )
        return Response(BridgeAckResultSerializer({"status": job_status}).data)


@extend_schema(tags=["print bridge"])
class BridgePrinterListView(BridgeAPIView):
    @extend_schema(
        operation_id="print_bridge_printers",
        responses={200: BridgePrinterSerializer(many=True), **AUTH_ERRORS},
    )
    def get(self, request):
        """The active printers this bridge serves: bridge-transport printers of its warehouse."""
        printers = selectors.bridge_printers(bridge=self.bridge)
        return Response(BridgePrinterSerializer(printers, many=True).data)
