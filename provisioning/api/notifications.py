"""/api/v1/notification-channels/: a team's webhooks and email addresses, and what was
sent to each. Thin, as the rest of the API: check the body's shape, call one service
(services.channels), serialize. A webhook's secret is in the answer to its registration
and in no other answer."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning import selectors
from provisioning.api.views import ANY_ID, ERRORS, LIST_ERRORS
from provisioning.errors import NotFound
from provisioning.models import ChannelKind, Delivery, NotificationChannel, NotificationEvent
from provisioning.services.channels import channel_enable, channel_register, channel_remove


class ChannelCreateSerializer(serializers.Serializer):
    """A notification channel to register: a webhook (`url`) or an email address."""

    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    url = serializers.CharField(required=False, help_text="a webhook's http(s) URL, without "
                                "credentials in it")
    email = serializers.CharField(required=False, help_text="an email channel's address")
    # Checked by the service (services.channels), which names each unknown event and
    # lists the known ones.
    events = serializers.ListField(child=serializers.CharField(), help_text=(
        f"the events it hears of, among {', '.join(NotificationEvent.values)}"))
    team = serializers.CharField(required=False, help_text="which of your teams' (needed "
                                 "when you belong to more than one)")


class ChannelSerializer(serializers.ModelSerializer):
    """A notification channel as anyone of its team sees it: never its secret."""

    team = serializers.CharField(source="team.name")
    url = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = ["id", "team", "kind", "url", "email", "events", "enabled",
                  "consecutive_failures", "disabled_at", "disabled_reason", "created_at"]

    def get_url(self, channel: NotificationChannel) -> str | None:
        return channel.target if channel.kind == ChannelKind.WEBHOOK else None

    def get_email(self, channel: NotificationChannel) -> str | None:
        return channel.target if channel.kind == ChannelKind.EMAIL else None


class ChannelCreatedSerializer(ChannelSerializer):
    """The channel just registered, with a webhook's secret: shown this once, never again."""

    secret = serializers.CharField(allow_null=True, help_text="the webhook's HMAC key "
                                   "(null for email); keep it now, it is not shown again")

    class Meta(ChannelSerializer.Meta):
        fields = [*ChannelSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    """One event sent (or being sent) to a channel."""

    class Meta:
        model = Delivery
        fields = ["id", "event", "status", "attempts", "last_status_code", "last_error",
                  "payload", "created_at", "finished_at"]


CHANNEL_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
# A channel's delivery log as the API shows it: the newest, at most this many.
DELIVERIES_SHOWN = 50


@extend_schema_view(
    list=extend_schema(responses={200: ChannelSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(parameters=[CHANNEL_ID],
                           responses={200: ChannelSerializer, **ERRORS}),
)
class NotificationChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                                 viewsets.GenericViewSet):
    """Your teams' notification channels: webhooks (signed POSTs) and email addresses that
    hear of submitted, pending_approval, succeeded, failed, expiring and drift_found."""

    serializer_class = ChannelSerializer
    ordering = ("id",)
    lookup_value_regex = ANY_ID

    def get_queryset(self):
        return selectors.channel_list(user=self.request.user)

    def get_object(self):
        if not str(self.kwargs.get("pk", "")).isdigit():
            raise NotFound("no such notification channel")
        return super().get_object()

    @extend_schema(request=ChannelCreateSerializer,
                   responses={201: ChannelCreatedSerializer, **ERRORS})
    def create(self, request: Request) -> Response:
        """Register a channel for one of your teams. A webhook's answer carries its
        `secret` (the HMAC key of its signatures) this once: it is never shown again."""
        body = ChannelCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        kind = values["kind"]
        channel, secret = channel_register(
            user=request.user, kind=kind, events=values["events"], team=values.get("team"),
            target=values.get("email") if kind == "email" else values.get("url"))
        answer = ChannelCreatedSerializer(channel, context={"request": request}).data
        answer["secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED,
                        headers={"Location": reverse("api:notification-channel-detail",
                                                     args=[channel.pk])})

    @extend_schema(parameters=[CHANNEL_ID], responses={204: None, **ERRORS})
    def destroy(self, request: Request, pk: str) -> Response:
        """Remove the channel and its delivery log."""
        channel_remove(channel=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, parameters=[CHANNEL_ID],
                   responses={200: ChannelSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        """Enable a channel disabled for failing (its failure count starts again)."""
        channel = channel_enable(channel=self.get_object(), user=request.user)
        return Response(ChannelSerializer(channel).data)

    @extend_schema(parameters=[CHANNEL_ID],
                   responses={200: DeliverySerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def deliveries(self, request: Request, pk: str) -> Response:
        """The channel's latest deliveries, newest first: what was sent, how it went."""
        channel = self.get_object()
        latest = channel.deliveries.order_by("-created_at", "-id")[:DELIVERIES_SHOWN]
        return Response(DeliverySerializer(latest, many=True).data)
