"""The Python client of the licensing service.

- :class:`LicenseClient` validates a license, activates and deactivates machines, checks out and
  returns floating leases (:meth:`LicenseClient.checkout`, with background heartbeats), records
  usage, and checks out offline license files.
- :func:`ensure_licensed` is the recommended use for a node-locked app: at most one call a day.
- Every answer is verified (signature version 2, Ed25519, keys pinned in the app) over the exact
  request sent before anything of it is read: :func:`verify_answer`, :class:`SignatureError`.
- :func:`verify_license_file` verifies an offline license file without the network.
"""

from ._time import Clock, format_rfc3339, parse_rfc3339, system_clock
from .client import API_KEY_PATTERN, DEFAULT_TIMEOUT, LicenseClient, Verdict
from .errors import (
    LicensingError,
    ConfigurationError,
    UnreachableError,
    TransportError,
    GatewayError,
    SignatureError,
    LicenseFileError,
    NoOfflineLicenseError,
    UnexpectedAnswerError,
    ApiError,
    InvalidRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    ConflictError,
    RateLimitError,
    ServerError,
    InvalidJsonError,
    BodyTooLargeError,
    InvalidCursorError,
    InvalidStripeSignatureError,
    InvalidEventError,
    NonceRequiredError,
    RequestValidationError,
    FingerprintRequiredError,
    MetadataTooLargeError,
    TimestampOutOfRangeError,
    UnknownMetricError,
    ProductMismatchError,
    MethodNotAllowedError,
    UnauthenticatedError,
    ForbiddenError,
    TenantInactiveError,
    LicenseNotActiveError,
    LicenseScopeMismatchError,
    ClientAuthDisabledError,
    QuotaExceededError,
    PlanLimitReachedError,
    LinkInvalidError,
    RouteNotFoundError,
    LicenseNotFoundError,
    ActivationNotFoundError,
    ProductNotFoundError,
    PolicyNotFoundError,
    TrialNotAvailableError,
    ApiKeyNotFoundError,
    TenantNotFoundError,
    WebhookEndpointNotFoundError,
    DeliveryNotFoundError,
    PortalNotFoundError,
    LicenseUnavailableError,
    OverageMaxExceededError,
    LeaseExpiredError,
    NoActivationError,
    TrialAlreadyUsedError,
    IdempotencyKeyReusedError,
    ProductExistsError,
    LicenseKeyExistsError,
    LicenseCancelledError,
    InvalidTransitionError,
    TenantExistsError,
    TenantClosedError,
    TenantNotProvisioningError,
    WebhookEndpointLimitError,
    StaffExistsError,
    RateLimitedError,
    DeactivationLimitReachedError,
    InternalError,
    ServiceUnavailableError,
    TooManyActivationsError,
    ERROR_CLASSES,
    api_error,
    error_class,
)
from .file import FORMAT, MAX_CLOCK_SKEW, FileActivation, LicenseFile, verify_license_file
from .keys import KeyLike, PinnedKeys
from .lease import HeartbeatThread, Lease
from .session import FILE_TTL_SECONDS, REFRESH_AFTER, Licensed, ensure_licensed
from .signature import (
    MAX_ANSWER_SKEW,
    SIGNATURE_VERSION,
    SignatureHeader,
    signed_message,
    verify_answer,
)
from .types import Activation, EntitlementCheck, License, Seats, UsageRecord, Validation

__version__ = "0.1.0"

__all__ = [
    "API_KEY_PATTERN",
    "Activation",
    "Clock",
    "DEFAULT_TIMEOUT",
    "EntitlementCheck",
    "FILE_TTL_SECONDS",
    "FORMAT",
    "FileActivation",
    "HeartbeatThread",
    "KeyLike",
    "Lease",
    "License",
    "LicenseClient",
    "LicenseFile",
    "Licensed",
    "MAX_ANSWER_SKEW",
    "MAX_CLOCK_SKEW",
    "PinnedKeys",
    "REFRESH_AFTER",
    "SIGNATURE_VERSION",
    "Seats",
    "SignatureHeader",
    "UsageRecord",
    "Validation",
    "Verdict",
    "ensure_licensed",
    "format_rfc3339",
    "parse_rfc3339",
    "signed_message",
    "system_clock",
    "verify_answer",
    "verify_license_file",
    'LicensingError', 'ConfigurationError', 'UnreachableError', 'TransportError', 'GatewayError', 'SignatureError', 'LicenseFileError', 'NoOfflineLicenseError', 'UnexpectedAnswerError', 'ApiError', 'InvalidRequestError', 'AuthenticationError', 'PermissionDeniedError', 'NotFoundError', 'ConflictError', 'RateLimitError', 'ServerError', 'InvalidJsonError', 'BodyTooLargeError', 'InvalidCursorError', 'InvalidStripeSignatureError', 'InvalidEventError', 'NonceRequiredError', 'RequestValidationError', 'FingerprintRequiredError', 'MetadataTooLargeError', 'TimestampOutOfRangeError', 'UnknownMetricError', 'ProductMismatchError', 'MethodNotAllowedError', 'UnauthenticatedError', 'ForbiddenError', 'TenantInactiveError', 'LicenseNotActiveError', 'LicenseScopeMismatchError', 'ClientAuthDisabledError', 'QuotaExceededError', 'PlanLimitReachedError', 'LinkInvalidError', 'RouteNotFoundError', 'LicenseNotFoundError', 'ActivationNotFoundError', 'ProductNotFoundError', 'PolicyNotFoundError', 'TrialNotAvailableError', 'ApiKeyNotFoundError', 'TenantNotFoundError', 'WebhookEndpointNotFoundError', 'DeliveryNotFoundError', 'PortalNotFoundError', 'LicenseUnavailableError', 'OverageMaxExceededError', 'LeaseExpiredError', 'NoActivationError', 'TrialAlreadyUsedError', 'IdempotencyKeyReusedError', 'ProductExistsError', 'LicenseKeyExistsError', 'LicenseCancelledError', 'InvalidTransitionError', 'TenantExistsError', 'TenantClosedError', 'TenantNotProvisioningError', 'WebhookEndpointLimitError', 'StaffExistsError', 'RateLimitedError', 'DeactivationLimitReachedError', 'InternalError', 'ServiceUnavailableError', 'TooManyActivationsError', 'ERROR_CLASSES', 'api_error', 'error_class',
]
