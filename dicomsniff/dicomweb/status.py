"""HTTP status codes in DICOMweb words (PS3.18 8.5 and each transaction's response section),
and the Failure / Warning Reason codes of a Store Instances response (PS3.18 10.5.3).

Category follows the model's DIMSE words so one response-time table and one filter serve both
protocols: 2xx Success (202 and 206 Warning: part of the request was not done), 1xx/3xx
Informational/Redirect, 4xx/5xx Failure.
"""

from __future__ import annotations

from dissectors.dimse.status import meaning as dimse_meaning

from .services import QIDO, STOW, UPS, WADO_RS, WADO_URI

_GENERAL: dict[int, str] = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content: some of the requested resources were not returned",
    301: "Moved Permanently", 302: "Found (redirect)", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request: the origin server could not understand the request (a path, query "
         "parameter or header it does not accept)",
    401: "Unauthorized: credentials are missing or wrong",
    403: "Forbidden: the user agent may not do this",
    404: "Not Found: no such resource (unknown study, series or instance UID, or path)",
    405: "Method Not Allowed",
    406: "Not Acceptable: the origin server cannot produce any media type or transfer syntax "
         "the Accept header allows",
    409: "Conflict",
    410: "Gone: the resource existed and was deleted",
    411: "Length Required",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type: the request's Content-Type is not supported",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented: the origin server does not support this transaction",
    502: "Bad Gateway",
    503: "Service Unavailable: the origin server is busy or down",
    504: "Gateway Timeout",
}

_BY_SERVICE: dict[str, dict[int, str]] = {
    STOW: {
        200: "OK: every instance was stored",
        202: "Accepted: some instances were stored, others failed or were stored with "
             "warnings (see the Failed SOP Sequence and Warning Reasons)",
        400: "Bad Request: the payload could not be read (not multipart/related, a part "
             "that is not an instance, ...)",
        409: "Conflict: no instance was stored (see the Failed SOP Sequence)",
        415: "Unsupported Media Type: the origin server does not take this Content-Type",
    },
    QIDO: {
        200: "OK: the matches are in the body",
        204: "No Content: nothing matched",
        400: "Bad Request: a query parameter or its value is not supported",
        413: "Payload Too Large: too many matches; narrow the query or use limit",
    },
    WADO_RS: {
        200: "OK: the resources are in the body",
        206: "Partial Content: some of the resources could not be returned",
        404: "Not Found: no such study, series, instance or frame",
        406: "Not Acceptable: none of the Accept media types or transfer syntaxes can be "
             "produced for this resource",
        410: "Gone: the resource was deleted",
    },
    WADO_URI: {
        200: "OK: the object is in the body",
        400: "Bad Request: a parameter (contentType, transferSyntax, ...) is not supported",
        404: "Not Found: no such object",
        406: "Not Acceptable: the requested contentType cannot be produced",
    },
    UPS: {
        200: "OK",
        201: "Created: the workitem (or subscription) was created",
        # PS3.18 11.8.3: a Request Cancellation accepted while the workitem's state has not
        # changed yet (the performer decides); elsewhere, done with a Warning header.
        202: "Accepted: the request was taken but the workitem has not changed yet (a "
             "cancellation request the performer has still to act on), or done with a "
             "warning (see the Warning header)",
        400: "Bad Request: the workitem data set or parameters are invalid",
        404: "Not Found: no such workitem (or no such subscription)",
        409: "Conflict: the workitem's state (or its Transaction UID) does not allow it",
    },
}


def category(status: int | None) -> str | None:
    """Success / Warning / Failure / Informational / Redirect, like DIMSE status classes."""
    if status is None:
        return None
    if status in (202, 206):
        return "Warning"
    if 200 <= status < 300:
        return "Success"
    if status < 200:
        return "Informational"
    if status < 400:
        return "Redirect"
    return "Failure"


def meaning(status: int | None, service: str | None) -> str:
    """``status`` in words for ``service`` (PS3.18 first, then RFC 9110)."""
    if status is None:
        return "no response"
    text = _BY_SERVICE.get(service or "", {}).get(status) or _GENERAL.get(status)
    if text is not None:
        return text
    kind = {1: "informational", 2: "success", 3: "redirection", 4: "client error",
            5: "server error"}.get(status // 100, "not an HTTP status")
    return f"{status} ({kind})"


# PS3.18 10.5.3 Failure Reason values beyond the Storage statuses of PS3.4 B.2.3.
_STOW_REASONS = {0xC122: "Referenced Transfer Syntax not supported",
                 0x0122: "Referenced SOP Class not supported",
                 0xA770: "Not authorized to store"}


def failure_reason(code: int | None) -> str:
    """A Failure Reason (0008,1197) or Warning Reason (0008,1196) of a STOW-RS response."""
    if code is None:
        return "no reason given"
    text = _STOW_REASONS.get(code)
    if text is None:
        text = dimse_meaning(code, "C-STORE")
    return f"0x{code:04X} {text}"
