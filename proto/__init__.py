"""The wire contract between the trainer and the reward services, and the client that speaks it."""

from proto.models import (
    PROTOCOL_VERSION,
    ErrorBody,
    ErrorResponse,
    ErrorType,
    ImageData,
    ItemDetail,
    ItemStatus,
    ScoreItem,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
    ServiceLimits,
)

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorBody",
    "ErrorResponse",
    "ErrorType",
    "ImageData",
    "ItemDetail",
    "ItemStatus",
    "ScoreItem",
    "ScoreRequest",
    "ScoreResponse",
    "ServiceInfo",
    "ServiceLimits",
]
