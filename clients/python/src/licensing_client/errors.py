"""Every error the client raises.

All derive from :class:`LicensingError`, which carries ``code`` (the envelope's ``error.code``, or
a client-side code such as ``SIGNATURE_INVALID``), ``status`` (the HTTP status, ``None`` when no
answer was read) and ``request_id`` (``meta.request_id`` of the answer, when there was one).

- :class:`ApiError` and its subclasses: the service answered with a **verified** error envelope.
  Each envelope code has its own class (:data:`ERROR_CLASSES`), grouped under one class per
  ``error.type`` (:class:`InvalidRequestError`, :class:`AuthenticationError`,
  :class:`PermissionDeniedError`, :class:`NotFoundError`, :class:`ConflictError`,
  :class:`RateLimitError`, :class:`ServerError`). A code this version does not know maps to the
  group of its status.
- :class:`SignatureError`: the answer (or a license file, :class:`LicenseFileError`) failed
  verification. Nothing of it was used.
- :class:`UnreachableError` (:class:`TransportError`, :class:`GatewayError`): the service could not
  be reached. Only these make the client fall back to its cached offline license file.
- :class:`NoOfflineLicenseError`, :class:`UnexpectedAnswerError`, :class:`ConfigurationError`.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type


class LicensingError(Exception):
    """The base of every error of this package."""

    #: The default code of the class (an instance may carry the envelope's exact code).
    default_code = "LICENSING_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = code or self.default_code
        self.status: Optional[int] = status
        self.request_id: Optional[str] = request_id

    def __str__(self) -> str:
        parts = [self.code]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        head = " ".join(parts)
        tail = f" (request {self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{tail}"


# --- client-side errors --------------------------------------------------------------------------


class ConfigurationError(LicensingError, ValueError):
    """The client was given a missing or invalid setting."""

    default_code = "CONFIGURATION_ERROR"


class UnreachableError(LicensingError):
    """The service could not be reached; the only errors that allow the offline fallback."""

    default_code = "UNREACHABLE"


class TransportError(UnreachableError):
    """The request did not complete: DNS, connection refused, TLS, timeout, a cut-off answer."""

    default_code = "TRANSPORT_ERROR"


class GatewayError(UnreachableError):
    """A 5xx answer without ``X-Signature``: a gateway or load balancer in front of the service
    answered (throttling, a timeout, a crash), not the service. Its body is never read."""

    default_code = "GATEWAY_UNAVAILABLE"


class SignatureError(LicensingError):
    """An answer or a license file failed verification: the signature is missing, malformed,
    by a key that is not pinned, of a retired version, or does not verify for the request that
    was sent; or (license files, :class:`LicenseFileError`) one of the file's checks failed.
    Nothing of what was received was used."""

    default_code = "SIGNATURE_INVALID"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "invalid",
        code: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id)
        #: Why, in the words of clients/conformance: answers ``missing_signature``,
        #: ``malformed``, ``unsupported_version``, ``unknown_kid``, ``bad_signature`` (any
        #: tampering: the verifier cannot tell which part), ``expired`` (a date too far from
        #: the clock, when one is checked); files ``malformed``, ``unknown_kid``, ``tampered``,
        #: ``unsupported_format``, ``wrong_tenant``, ``expired``, ``not_yet_valid``,
        #: ``unbound_with_fingerprint``, ``wrong_fingerprint``, ``wrong_license``.
        self.reason = reason


class LicenseFileError(SignatureError):
    """A license file (downloaded or read from the cache) was refused; ``reason`` says why."""

    default_code = "LICENSE_FILE_INVALID"


class NoOfflineLicenseError(LicensingError):
    """No cached license file to answer from (no cache directory, or no checkout yet)."""

    default_code = "NO_OFFLINE_LICENSE"


class UnexpectedAnswerError(LicensingError):
    """A verified answer did not have the expected shape (a newer, incompatible service?)."""

    default_code = "UNEXPECTED_ANSWER"


# --- verified error envelopes --------------------------------------------------------------------


class ApiError(LicensingError):
    """The service answered with a verified error envelope ``{"error": {...}, "meta": {...}}``."""

    default_code = "API_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        error_type: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
        retry_after: Optional[int] = None,
    ) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id)
        #: ``error.type``: ``invalid_request_error``, ``conflict_error``, ...
        self.error_type = error_type
        #: The whole ``error`` object (``limit``, ``metric``, ``used``, ``data``, ...).
        self.details: Dict[str, Any] = dict(details or {})
        #: ``Retry-After`` in seconds when the answer had one (429, 503). Headers other than
        #: the signature's are not signed: treat it as a hint.
        self.retry_after = retry_after

    @property
    def limit(self) -> Optional[int]:
        """``error.limit`` (``TOO_MANY_ACTIVATIONS``, ``QUOTA_EXCEEDED``), if any."""
        value = self.details.get("limit")
        return value if isinstance(value, int) else None


class InvalidRequestError(ApiError):
    """400, 405, 422 (``invalid_request_error``)."""

    default_code = "INVALID_REQUEST"


class AuthenticationError(ApiError):
    """401 (``authentication_error``)."""

    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(ApiError):
    """403 (``permission_error``)."""

    default_code = "FORBIDDEN"


class NotFoundError(ApiError):
    """404 (``not_found_error``)."""

    default_code = "NOT_FOUND"


class ConflictError(ApiError):
    """409 (``conflict_error``)."""

    default_code = "CONFLICT"


class RateLimitError(ApiError):
    """429 (``rate_limit_error``); ``retry_after`` is the ``Retry-After`` header, if any."""

    default_code = "RATE_LIMITED"


class ServerError(ApiError):
    """500, 503 (``api_error``), signed by the service."""

    default_code = "INTERNAL_ERROR"


# 400 / 405 / 422
class InvalidJsonError(InvalidRequestError):
    default_code = "INVALID_JSON"


class BodyTooLargeError(InvalidRequestError):
    default_code = "BODY_TOO_LARGE"


class InvalidCursorError(InvalidRequestError):
    default_code = "INVALID_CURSOR"


class InvalidStripeSignatureError(InvalidRequestError):
    """``INVALID_SIGNATURE``: the Stripe webhook's signature (not an answer's signature)."""

    default_code = "INVALID_SIGNATURE"


class InvalidEventError(InvalidRequestError):
    default_code = "INVALID_EVENT"


class NonceRequiredError(InvalidRequestError):
    default_code = "NONCE_REQUIRED"


class RequestValidationError(InvalidRequestError):
    """``VALIDATION_ERROR``: a value of the request is not acceptable."""

    default_code = "VALIDATION_ERROR"


class FingerprintRequiredError(InvalidRequestError):
    default_code = "FINGERPRINT_REQUIRED"


class MetadataTooLargeError(InvalidRequestError):
    default_code = "METADATA_TOO_LARGE"


class TimestampOutOfRangeError(InvalidRequestError):
    default_code = "TIMESTAMP_OUT_OF_RANGE"


class UnknownMetricError(InvalidRequestError):
    default_code = "UNKNOWN_METRIC"


class ProductMismatchError(InvalidRequestError):
    default_code = "PRODUCT_MISMATCH"


class MethodNotAllowedError(InvalidRequestError):
    default_code = "METHOD_NOT_ALLOWED"


# 401
class UnauthenticatedError(AuthenticationError):
    default_code = "UNAUTHENTICATED"


# 403
class ForbiddenError(PermissionDeniedError):
    default_code = "FORBIDDEN"


class TenantInactiveError(PermissionDeniedError):
    default_code = "TENANT_INACTIVE"


class LicenseNotActiveError(PermissionDeniedError):
    """Suspended (or past due beyond grace), cancelled or expired."""

    default_code = "LICENSE_NOT_ACTIVE"


class LicenseScopeMismatchError(PermissionDeniedError):
    default_code = "LICENSE_SCOPE_MISMATCH"


class ClientAuthDisabledError(PermissionDeniedError):
    default_code = "CLIENT_AUTH_DISABLED"


class QuotaExceededError(PermissionDeniedError):
    """A hard-limited metric would pass its limit (``details``: ``metric``, ``limit``, ``used``)."""

    default_code = "QUOTA_EXCEEDED"


class PlanLimitReachedError(PermissionDeniedError):
    default_code = "PLAN_LIMIT_REACHED"


class LinkInvalidError(PermissionDeniedError):
    default_code = "LINK_INVALID"


# 404
class RouteNotFoundError(NotFoundError):
    default_code = "ROUTE_NOT_FOUND"


class LicenseNotFoundError(NotFoundError):
    default_code = "LICENSE_NOT_FOUND"


class ActivationNotFoundError(NotFoundError):
    default_code = "ACTIVATION_NOT_FOUND"


class ProductNotFoundError(NotFoundError):
    default_code = "PRODUCT_NOT_FOUND"


class PolicyNotFoundError(NotFoundError):
    default_code = "POLICY_NOT_FOUND"


class TrialNotAvailableError(NotFoundError):
    default_code = "TRIAL_NOT_AVAILABLE"


class ApiKeyNotFoundError(NotFoundError):
    default_code = "API_KEY_NOT_FOUND"


class TenantNotFoundError(NotFoundError):
    default_code = "TENANT_NOT_FOUND"


class WebhookEndpointNotFoundError(NotFoundError):
    default_code = "WEBHOOK_ENDPOINT_NOT_FOUND"


class DeliveryNotFoundError(NotFoundError):
    default_code = "DELIVERY_NOT_FOUND"


class PortalNotFoundError(NotFoundError):
    default_code = "PORTAL_NOT_FOUND"


# 409
class LicenseUnavailableError(ConflictError):
    """No seat is free: ``TOO_MANY_ACTIVATIONS`` as the API names it (floating: every committed
    and overage seat is held by an unexpired lease). ``limit`` is the seat limit
    (floating: ``max_activations + max_overage``)."""

    default_code = "TOO_MANY_ACTIVATIONS"


#: The API's name for :class:`LicenseUnavailableError`.
TooManyActivationsError = LicenseUnavailableError


class OverageMaxExceededError(LicenseUnavailableError):
    """A floating checkout was refused although the license has overage seats: the committed
    seats *and* every overage seat (``max_overage``) are held."""

    def __init__(self, message: str, *, overage_limit: Optional[int] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        #: The license's ``max_overage``.
        self.overage_limit = overage_limit


class LeaseExpiredError(ConflictError):
    """A heartbeat of a lease that lapsed, was returned or was reclaimed: check out again."""

    default_code = "LEASE_EXPIRED"


class NoActivationError(ConflictError):
    """A file checkout for a fingerprint that holds no seat: activate first."""

    default_code = "NO_ACTIVATION"


class TrialAlreadyUsedError(ConflictError):
    default_code = "TRIAL_ALREADY_USED"


class IdempotencyKeyReusedError(ConflictError):
    default_code = "IDEMPOTENCY_KEY_REUSED"


class ProductExistsError(ConflictError):
    default_code = "PRODUCT_EXISTS"


class LicenseKeyExistsError(ConflictError):
    default_code = "LICENSE_KEY_EXISTS"


class LicenseCancelledError(ConflictError):
    default_code = "LICENSE_CANCELLED"


class InvalidTransitionError(ConflictError):
    default_code = "INVALID_TRANSITION"


class TenantExistsError(ConflictError):
    default_code = "TENANT_EXISTS"


class TenantClosedError(ConflictError):
    default_code = "TENANT_CLOSED"


class TenantNotProvisioningError(ConflictError):
    default_code = "TENANT_NOT_PROVISIONING"


class WebhookEndpointLimitError(ConflictError):
    default_code = "WEBHOOK_ENDPOINT_LIMIT"


class StaffExistsError(ConflictError):
    default_code = "STAFF_EXISTS"


# 429
class RateLimitedError(RateLimitError):
    default_code = "RATE_LIMITED"


class DeactivationLimitReachedError(RateLimitError):
    """The license's churn limit: the seat stays taken."""

    default_code = "DEACTIVATION_LIMIT_REACHED"


# 500 / 503
class InternalError(ServerError):
    default_code = "INTERNAL_ERROR"


class ServiceUnavailableError(ServerError):
    """A signed 503 ``SERVICE_UNAVAILABLE``: the service itself says retry (not a fallback case:
    the service was reached)."""

    default_code = "SERVICE_UNAVAILABLE"


#: Every envelope code the service answers, with its class.
ERROR_CLASSES: Dict[str, Type[ApiError]] = {
    cls.default_code: cls
    for cls in (
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
    )
}
# A name the contract uses for the same refusal.
ERROR_CLASSES["LICENSE_UNAVAILABLE"] = LicenseUnavailableError

_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: InvalidRequestError,
    405: InvalidRequestError,
    422: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_class(code: str, status: int) -> Type[ApiError]:
    """The class for an envelope ``code`` (else the group of ``status``)."""
    cls = ERROR_CLASSES.get(code)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def api_error(
    status: int,
    error: Mapping[str, Any],
    request_id: Optional[str] = None,
    retry_after: Optional[int] = None,
) -> ApiError:
    """The exception for a verified error envelope's ``error`` object."""
    code = str(error.get("code") or "UNKNOWN")
    message = str(error.get("message") or code)
    cls = error_class(code, status)
    return cls(
        message,
        code=code,
        status=status,
        request_id=request_id,
        error_type=error.get("type") if isinstance(error.get("type"), str) else None,
        details=error,
        retry_after=retry_after,
    )
