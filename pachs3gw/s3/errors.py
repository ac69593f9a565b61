"""S3 errors: raised where the fault is found, rendered as XML in one place.

Every failure a client sees is one of these. A backend raises the subclass
that names the S3 error code; the HTTP layer renders ``code``, ``message``
and ``status`` into the S3 XML error document. Anything else that escapes is
a bug and is rendered as InternalError (500).
"""

from __future__ import annotations

from typing import ClassVar


class S3Error(Exception):
    """An S3 error response: ``Code``, ``Message`` and the HTTP status."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        #: The bucket or object the error is about, if the raiser knows better
        #: than the request path.
        self.resource = resource
        #: Extra response headers (e.g. ``Retry-After``).
        self.headers = dict(headers or {})
        #: Extra child elements of ``<Error>`` (e.g. ``BucketName``, ``Key``).
        self.extra = dict(extra or {})
        super().__init__(f"{self.code}: {self.message}")


def _error(name: str, status: int, message: str) -> type[S3Error]:
    return type(name, (S3Error,), {"code": name, "status": status, "default_message": message})


# 3xx/4xx client errors -----------------------------------------------------
AccessDenied = _error("AccessDenied", 403, "Access Denied")
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId", 403, "The AWS access key Id you provided does not exist in our records."
)
RequestTimeTooSkewed = _error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
)
AuthorizationHeaderMalformed = _error(
    "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."
)
AuthorizationQueryParametersError = _error(
    "AuthorizationQueryParametersError",
    400,
    "Error parsing the X-Amz-Credential parameter.",
)
MissingSecurityHeader = _error(
    "MissingSecurityHeader", 400, "Your request was missing a required header."
)
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified multipart upload does not exist. The upload ID might be invalid, "
    "or the multipart upload might have been aborted or completed.",
)
NoSuchVersion = _error(
    "NoSuchVersion", 404, "The specified version does not exist."
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketAlreadyExists = _error(
    "BucketAlreadyExists", 409, "The requested bucket name is not available."
)
BucketNotEmpty = _error(
    "BucketNotEmpty", 409, "The bucket you tried to delete is not empty"
)
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long")
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
PreconditionFailed = _error(
    "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"
)
BadDigest = _error(
    "BadDigest", 400, "The Content-MD5 you specified did not match what we received."
)
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
XAmzContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
IncompleteBody = _error(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)
MissingContentLength = _error(
    "MissingContentLength", 411, "You must provide the Content-Length HTTP header."
)
EntityTooLarge = _error(
    "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size."
)
EntityTooSmall = _error(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."
)
InvalidPart = _error(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found. The part might not have been "
    "uploaded, or the specified entity tag might not have matched the part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. The parts list must be specified in "
    "order by part number.",
)
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
MalformedTrailerError = _error(
    "MalformedTrailerError",
    400,
    "The request contained trailing data that was not well-formed or did not conform to "
    "our published schema.",
)
InvalidObjectState = _error(
    "InvalidObjectState", 403, "The operation is not valid for the current state of the object."
)
MethodNotAllowed = _error(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
InvalidPolicyDocument = _error(
    "InvalidPolicyDocument",
    400,
    "The content of the form does not meet the conditions specified in the policy document.",
)
MalformedPOSTRequest = _error(
    "MalformedPOSTRequest",
    400,
    "The body of your POST request is not well-formed multipart/form-data.",
)
MaxPostPreDataLengthExceeded = _error(
    "MaxPostPreDataLengthExceeded",
    400,
    "Your POST request fields preceding the upload file were too large.",
)
InvalidBucketState = _error(
    "InvalidBucketState", 409, "The request is not valid with the current state of the bucket."
)
RequestTimeout = _error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the "
    "timeout period.",
)
RequestHeaderSectionTooLarge = _error(
    "RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size."
)
BadRequest = _error("BadRequest", 400, "An error occurred when parsing the HTTP request.")

# 5xx -----------------------------------------------------------------------
InternalError = _error(
    "InternalError", 500, "We encountered an internal error. Please try again."
)
NotImplemented_ = _error(
    "NotImplemented", 501, "A header you provided implies functionality that is not implemented."
)
NotImplemented_.__name__ = NotImplemented_.__qualname__ = "NotImplemented_"
ServiceUnavailable = _error(
    "ServiceUnavailable", 503, "Please reduce your request rate."
)
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")


def copy_onto_itself() -> S3Error:
    """S3's refusal of a CopyObject onto its own source that changes nothing.

    The HTTP layer refuses it when the names match; a backend that knows
    two names for one bucket (aliases) refuses it for those too.
    """
    return InvalidRequest(
        "This copy request is illegal because it is trying to copy an object to itself "
        "without changing the object's metadata, storage class, website redirect "
        "location or encryption attributes."
    )
