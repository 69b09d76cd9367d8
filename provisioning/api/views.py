"""The REST API, /api/v1/. Thin: check the body's shape, call one service, serialize."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes, throttle_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import selectors
from provisioning.api.errors import flatten_errors
from provisioning.api.limits import current_settings
from provisioning.api.schema import RequestViewSchema
from provisioning.api.serializers import (
    BlueprintInstanceSerializer,
    BlueprintSerializer,
    EnvironmentSerializer,
    ErrorSerializer,
    ExtendSerializer,
    HealthSerializer,
    QuotaErrorDetailSerializer,
    QuotaSerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestDryRunSerializer,
    RequestSerializer,
    ResourceSerializer,
    ResourceTypeSerializer,
    StackDetailSerializer,
    StackDocumentSerializer,
    StackDryRunSerializer,
    StackSerializer,
)
from provisioning.errors import InvalidRequest
from provisioning.filtersets import (
    QuotaFilterSet,
    RequestFilterSet,
    ResourceFilterSet,
    StackFilterSet,
)
from provisioning.health import BROKER_NOT_USED, broker_status, database_status, sweep_status
from provisioning.models import Blueprint, RequestAction
from provisioning.resources import REGISTRY
from provisioning.services import (
    request_approve,
    request_cancel,
    request_retry,
    request_submit,
    resource_forget,
    stack_approve,
    stack_cancel,
    stack_delete,
    stack_retry,
    stack_submit,
)
from provisioning.services.blueprints import blueprint_instantiate, blueprint_version
from provisioning.services.dry_runs import request_dry_run, stack_dry_run
from provisioning.services.expiry import resource_extend
from provisioning.services.stack_expiry import stack_extend

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="bad input; names each offending field"),
    401: OpenApiResponse(ErrorSerializer, description="not authenticated"),
    403: OpenApiResponse(ErrorSerializer, description="not allowed"),
    404: OpenApiResponse(ErrorSerializer, description="no such thing among your teams'"),
    429: OpenApiResponse(ErrorSerializer, description="throttled; see Retry-After"),
}
LIST_ERRORS = {code: answer for code, answer in ERRORS.items() if code != 404}
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="not allowed in its state")}


class QuotaErrorSerializer(ErrorSerializer):
    error = QuotaErrorDetailSerializer()


# A submission may also be refused for its team's quota (code quota_exceeded, with `quota`).
SUBMIT_CONFLICT = {409: OpenApiResponse(
    QuotaErrorSerializer, description="not allowed in its state, or beyond its team's quota "
    "(quota_exceeded: `quota` names each limit and its use)")}
# Any path segment reaches the view, so a malformed id gets the API's JSON 404 rather than
# Django's HTML page for an unrouted URL; the schema still says the id is a UUID.
ANY_ID = "[^/]+"
ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="the same key with the same body returns the first request, never a second",
)


DRY_RUN = OpenApiParameter(
    "dry_run", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
    description="true: check and plan only; answers 200 with the plan and records nothing "
                "but an audit row",
)


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dry_run")
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise InvalidRequest.about("dry_run", "must be true or false", "invalid_dry_run")


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and (len(key) > 255 or "\x00" in key):
        raise InvalidRequest.about("Idempotency-Key", "at most 255 characters",
                                   "invalid_idempotency_key")
    return key


def _accepted(request, *, created: bool) -> Response:
    # request_submit answers with the request as it stands (in eager mode the job has
    # already run) and everything its body shows in hand: no reading it again.
    body = RequestDetailSerializer(request).data
    location = reverse("api:request-detail", args=[request.pk])
    return Response(
        body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        headers={"Location": location},
    )


@extend_schema_view(
    list=extend_schema(responses={200: RequestSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(parameters=[ID], responses={200: RequestDetailSerializer, **ERRORS}),
)
class RequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Resource requests of your teams, newest first."""

    schema = RequestViewSchema()
    filterset_class = RequestFilterSet
    ordering = selectors.REQUEST_ORDERING
    lookup_value_regex = ANY_ID

    def get_queryset(self):
        if self.action == "list":
            return selectors.request_list(user=self.request.user)
        return selectors.request_detail(user=self.request.user)

    def get_serializer_class(self):
        return RequestSerializer if self.action == "list" else RequestDetailSerializer

    @extend_schema(
        request=RequestCreateSerializer, parameters=[IDEMPOTENCY_KEY, DRY_RUN],
        responses={202: RequestDetailSerializer,
                   200: OpenApiResponse(
                       PolymorphicProxySerializer(
                           component_name="RequestSubmitAnswer",
                           serializers=[RequestDetailSerializer, RequestDryRunSerializer],
                           resource_type_field_name=None),
                       description="replay of an Idempotency-Key, or a dry run's plan"),
                   **ERRORS, **SUBMIT_CONFLICT},
    )
    def create(self, request: Request) -> Response:
        """Ask for a resource to be created, updated or deleted. Validates, records and
        enqueues; never calls AWS. 202 with the request and a Location header. With
        ?dry_run=true: validates and answers 200 with the plan (an update or delete is
        planned by a worker of its environment), recording nothing but an audit row."""
        dry_run = _dry_run(request)
        body = RequestCreateSerializer(data=request.data)
        if body.is_valid():
            values, refused = dict(body.validated_data), None
        elif isinstance(request.data, dict):
            # Check what the well-formed fields mean too: one answer names every problem.
            values, refused = body.fields_that_passed(), flatten_errors(body.errors)
        else:
            raise ValidationError(body.errors)
        if dry_run:
            return Response(request_dry_run(user=request.user, refused=refused, **values))
        recorded, created = request_submit(
            user=request.user, idempotency_key=_idempotency_key(request), refused=refused,
            **values,
        )
        return _accepted(recorded, created=created)

    @extend_schema(request=None, parameters=[ID],
                   responses={200: RequestDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Let a request that waits for approval go ahead (operators; not your own)."""
        return Response(self._detail(request_approve(request_id=self.get_object().pk,
                                                     user=request.user)))

    @extend_schema(request=None, parameters=[ID],
                   responses={200: RequestDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Withdraw a request that has not started."""
        return Response(self._detail(request_cancel(request_id=self.get_object().pk,
                                                    user=request.user)))

    @extend_schema(request=None, parameters=[ID],
                   responses={200: RequestDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """Run a failed, cancelled or expired request again."""
        return Response(self._detail(request_retry(request_id=self.get_object().pk,
                                                   user=request.user)))

    def _detail(self, recorded) -> dict:
        return RequestDetailSerializer(selectors.request_detail(user=self.request.user)
                                       .get(pk=recorded.pk)).data


@extend_schema_view(
    list=extend_schema(responses={200: ResourceSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(parameters=[ID], responses={200: ResourceSerializer, **ERRORS}),
)
class ResourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    """The inventory of your teams' resources."""

    serializer_class = ResourceSerializer
    filterset_class = ResourceFilterSet
    ordering = selectors.RESOURCE_ORDERING
    lookup_value_regex = ANY_ID

    def get_queryset(self):
        return selectors.resource_list(user=self.request.user)

    @extend_schema(
        request=None, parameters=[ID, IDEMPOTENCY_KEY],
        responses={202: RequestDetailSerializer, 200: RequestDetailSerializer,
                   **ERRORS, **SUBMIT_CONFLICT},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the resource: answers 202 with the delete request it created."""
        resource = self.get_object()
        recorded, created = request_submit(
            user=request.user, environment=resource.environment,
            resource_type=resource.resource_type, name=resource.name,
            action=RequestAction.DELETE, team=resource.team,
            idempotency_key=_idempotency_key(request),
        )
        return _accepted(recorded, created=created)

    @extend_schema(request=None, parameters=[ID],
                   responses={200: ResourceSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def forget(self, request: Request, pk: str) -> Response:
        """Stop tracking a resource reconcile found missing from the cloud (operators with
        the forget_resource permission): it becomes `forgotten` and its name is free."""
        forgotten = resource_forget(resource_id=self.get_object().pk, user=request.user)
        return Response(ResourceSerializer(forgotten, context={"request": request}).data)

    @extend_schema(request=ExtendSerializer, parameters=[ID],
                   responses={200: ResourceSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str) -> Response:
        """Give the resource a new expiry: {"ttl": "3d"} from now, or {"expires_at": ...},
        within its environment's max_ttl from now (one without an expiry gets one). The
        warnings already sent are reset; the new expiry has its own."""
        body = ExtendSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationError(body.errors)
        extended = resource_extend(resource_id=self.get_object().pk, user=request.user,
                                   **body.validated_data)
        return Response(ResourceSerializer(extended, context={"request": request}).data)


STACK_BODY = PolymorphicProxySerializer(
    component_name="StackBody",
    serializers=[StackDocumentSerializer, BlueprintInstanceSerializer],
    resource_type_field_name=None,
)
BLUEPRINT_FIELDS = ("blueprint", "version", "parameters", "environment", "name", "team",
                    "ttl", "expires_at")


@extend_schema_view(
    list=extend_schema(responses={200: StackSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(parameters=[ID], responses={200: StackDetailSerializer, **ERRORS}),
)
class StackViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stacks of your teams, newest first: several resources asked for as one, created in
    dependency order (members refer to each other's outputs), rolled back as one."""

    filterset_class = StackFilterSet
    ordering = selectors.STACK_ORDERING
    lookup_value_regex = ANY_ID

    def get_queryset(self):
        if self.action == "list":
            return selectors.stack_list(user=self.request.user)
        return selectors.stack_detail(user=self.request.user)

    def get_serializer_class(self):
        return StackSerializer if self.action == "list" else StackDetailSerializer

    @extend_schema(
        request=STACK_BODY, parameters=[IDEMPOTENCY_KEY, DRY_RUN],
        responses={202: StackDetailSerializer,
                   200: OpenApiResponse(
                       PolymorphicProxySerializer(
                           component_name="StackSubmitAnswer",
                           serializers=[StackDetailSerializer, StackDryRunSerializer],
                           resource_type_field_name=None),
                       description="replay of an Idempotency-Key, or a dry run's plans"),
                   **ERRORS, **SUBMIT_CONFLICT},
    )
    def create(self, request: Request) -> Response:
        """Ask for a stack: a stack document, or a blueprint with its parameters. Checks
        every member (400 naming each offending member and path), records it and starts
        it (or waits for approval where the environment requires it); never calls AWS."""
        dry_run = _dry_run(request)
        body = request.data
        if not isinstance(body, dict):
            raise InvalidRequest.about("body", "a stack is a JSON object", "invalid_stack")
        blueprint = parameters = None
        document = body
        if "blueprint" in body:
            unknown = sorted(set(body) - set(BLUEPRINT_FIELDS))
            if unknown:
                raise InvalidRequest.about_each(
                    {field: ["is not a field of a blueprint's stack"] for field in unknown})
            blueprint = blueprint_version(name=body["blueprint"], version=body.get("version"))
            parameters = body.get("parameters") or {}
            document = blueprint_instantiate(
                blueprint, environment=body.get("environment"), name=body.get("name"),
                parameters=parameters, team=body.get("team"))
            # Its lifetime goes into the document as given (checked with the rest).
            document.update({key: body[key] for key in ("ttl", "expires_at") if key in body})
        if dry_run:
            return Response(stack_dry_run(user=request.user, document=document))
        stack, created = stack_submit(user=request.user, document=document,
                                      idempotency_key=_idempotency_key(request),
                                      blueprint=blueprint, parameters=parameters)
        return Response(self._detail(stack),
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
                        headers={"Location": reverse("api:stack-detail", args=[stack.pk])})

    @extend_schema(request=None, parameters=[ID],
                   responses={200: StackDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Let a stack that waits for approval go ahead, every member with it (approvers;
        not your own). The approver sees every member and its spec in the stack."""
        return Response(self._detail(stack_approve(stack_id=self.get_object().pk,
                                                   user=request.user)))

    @extend_schema(request=None, parameters=[ID],
                   responses={200: StackDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Withdraw a stack (or its deletion) that waits for approval."""
        return Response(self._detail(stack_cancel(stack_id=self.get_object().pk,
                                                  user=request.user)))

    @extend_schema(request=None, parameters=[ID],
                   responses={200: StackDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """Run a failed or rolled-back stack again: members it holds stay, the others are
        asked for anew."""
        return Response(self._detail(stack_retry(stack_id=self.get_object().pk,
                                                 user=request.user)))

    @extend_schema(request=None, parameters=[ID],
                   responses={202: StackDetailSerializer, **ERRORS, **CONFLICT})
    def destroy(self, request: Request, pk: str) -> Response:
        """Tear the stack down: its members are deleted dependents first, each by an
        ordinary delete request. 202 with the stack."""
        stack = stack_delete(stack_id=self.get_object().pk, user=request.user)
        return Response(self._detail(stack), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ExtendSerializer, parameters=[ID],
                   responses={200: StackDetailSerializer, **ERRORS, **CONFLICT})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str) -> Response:
        """Give the stack a new expiry: {"ttl": "3d"} from now, or {"expires_at": ...},
        within its environment's max_ttl from now (one without an expiry gets one); your
        teams' stacks that succeeded or failed holding members. The warnings already sent
        are reset. Its members expire with it and cannot be extended alone."""
        body = ExtendSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationError(body.errors)
        return Response(self._detail(stack_extend(stack_id=self.get_object().pk,
                                                  user=request.user, **body.validated_data)))

    def _detail(self, stack) -> dict:
        return StackDetailSerializer(selectors.stack_detail(user=None).get(pk=stack.pk)).data


@extend_schema_view(list=extend_schema(responses={200: QuotaSerializer(many=True),
                                                  **LIST_ERRORS}))
class QuotaViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Quotas of your teams (every team's for operators who set them), each with what the
    team holds under it now: a create or import beyond one is refused, or waits for
    approval where the environment auto-approves within quota."""

    serializer_class = QuotaSerializer
    filterset_class = QuotaFilterSet
    ordering = selectors.QUOTA_ORDERING

    def get_queryset(self):
        return selectors.quota_list(user=self.request.user)


class BlueprintList(APIView):
    @extend_schema(responses={200: BlueprintSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        """Published blueprints, each version with its parameters' JSON Schema and members;
        POST /api/v1/stacks/ with {"blueprint", "version", "environment", "name",
        "parameters"} makes a stack of one."""
        blueprints = Blueprint.objects.prefetch_related("versions")
        return Response(BlueprintSerializer(blueprints, many=True).data)


class ResourceTypeList(APIView):
    @extend_schema(responses={200: ResourceTypeSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        """Each resource type with the JSON Schema of its spec."""
        return Response(ResourceTypeSerializer([
            {"name": kind.name, "title": kind.title, "max_name_length": kind.max_name_length,
             "spec_schema": kind.json_schema(), "outputs": kind.output_names()}
            for kind in REGISTRY.values()
        ], many=True).data)


class EnvironmentList(APIView):
    @extend_schema(responses={200: EnvironmentSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        """The environments requests may name (never a credential)."""
        return Response(EnvironmentSerializer(current_settings().environments, many=True).data)


@extend_schema(responses={200: HealthSerializer}, tags=["health"])
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([])
def healthz(request: Request) -> Response:
    """The process is alive."""
    return Response({"status": "ok"})


@extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, tags=["health"])
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([])
def readyz(request: Request) -> Response:
    """The database and the broker answer and the sweep runs; 503 naming what is not."""
    checks: dict = {"database": database_status(), "broker": broker_status(),
                    "sweep": sweep_status(grace_from_process_start=True)}
    ready = (checks["database"] == "ok" and checks["broker"] in ("ok", BROKER_NOT_USED)
             and checks["sweep"]["ok"])
    return Response({"status": "ok" if ready else "unavailable", "checks": checks},
                    status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE)
