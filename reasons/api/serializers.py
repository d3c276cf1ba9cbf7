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
    """502 body, in the dialect's {detail, code} shape: why Omnitron failed and which sync run
    (in the admin) says more."""

    detail = serializers.CharField()
    code = serializers.CharField()
    cause = serializers.CharField()
    sync_run = serializers.IntegerField()
