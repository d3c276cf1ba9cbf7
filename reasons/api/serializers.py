from rest_framework import serializers

from reasons.models import CancellationReason


class CancellationReasonSerializer(serializers.ModelSerializer):
    """Seed 004's reason object, field for field (snake_case, as Omnitron's OMS speaks)."""

    class Meta:
        model = CancellationReason
        fields = [
            "id",
            "cancellation_type",
            "created_date",
            "modified_date",
            "omnitron_id",
            "subject",
            "extra_information_needed",
            "ordering",
            "is_active",
        ]
        read_only_fields = fields


class PullFailedSerializer(serializers.Serializer):
    """502 body: an RFC 7807 problem object naming why Omnitron failed."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    cause = serializers.CharField()
    sync_run = serializers.IntegerField()
