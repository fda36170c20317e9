"""Which PS3.18 transaction an HTTP request is, read from its method and target.

The resource paths of PS3.18 (10.4 Retrieve, 10.5 Store, 10.6 Search, 11 Worklist / UPS-RS,
9 WADO-URI) follow a service root that each origin server chooses (``/dicom-web``,
``/dcm4chee-arc/aets/X/rs``, ...), so the root is not matched: the resource is recognised
from the first ``studies``, ``series``, ``instances`` or ``workitems`` segment on. WADO-URI
is recognised by its ``requestType=WADO`` query parameter (PS3.18 9.1), wherever it is sent.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from dissectors._plain import Record
from dissectors.http.message import safe_text

QIDO, WADO_RS, WADO_URI, STOW, UPS = "QIDO-RS", "WADO-RS", "WADO-URI", "STOW-RS", "UPS-RS"
SERVICES = (QIDO, WADO_RS, WADO_URI, STOW, UPS)
MAX_PARAMS = 256  # query parameters read from one target
_ROOTS = ("studies", "series", "instances", "workitems")
_RENDER = ("rendered", "thumbnail")
# PS3.18 11.10 / Table 11.10-1: the well-known UIDs that address the global subscriptions.
GLOBAL_SUBSCRIPTION = "1.2.840.10008.5.1.4.34.5"
FILTERED_SUBSCRIPTION = "1.2.840.10008.5.1.4.34.5.1"

SECTION = {QIDO: "PS3.18 10.6", WADO_RS: "PS3.18 10.4", WADO_URI: "PS3.18 9",
           STOW: "PS3.18 10.5", UPS: "PS3.18 11"}


class WebRequest(Record):
    """What a request asked for, in PS3.18 terms."""

    _fields = ("service", "action", "level", "study", "series", "instance", "frames",
               "workitem", "params", "root")
    __slots__ = _fields
    service: str | None  # None: not a DICOMweb request
    action: str  # in words: "Search for Studies", "Retrieve Instance Metadata", ...
    level: str | None  # study, series, instance, frames, workitem
    study: str | None
    series: str | None
    instance: str | None
    frames: list[int]
    workitem: str | None
    params: list[tuple[str, str]]  # query parameters, decoded, in order
    root: str  # the path before the resource: the service root

    def __init__(self, service: str | None, action: str, *, level: str | None = None,
                 study: str | None = None, series: str | None = None,
                 instance: str | None = None, frames: list[int] | None = None,
                 workitem: str | None = None, params: list[tuple[str, str]] | None = None,
                 root: str = "") -> None:
        self.service = service
        self.action = action
        self.level = level
        self.study = study
        self.series = series
        self.instance = instance
        self.frames = frames or []
        self.workitem = workitem
        self.params = params or []
        self.root = root

    def param(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.params if k.lower() == low), None)


def parse_params(query: str) -> list[tuple[str, str]]:
    """Query parameters, percent-decoded, then escaped again for people (a %1b stays text)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:  # more than MAX_PARAMS fields: keep the first ones
        pairs = parse_qsl("&".join(query.split("&", MAX_PARAMS)[:MAX_PARAMS]),
                          keep_blank_values=True)
    return [(safe_text(k), safe_text(v)) for k, v in pairs]


def _frames(text: str) -> list[int]:
    out = []
    for f in text.split(",")[:MAX_PARAMS]:
        f = f.strip()
        if f.isdigit() and len(f) < 10:
            out.append(int(f))
    return out


def classify(method: str, target: str) -> WebRequest:
    """The PS3.18 transaction of ``method target`` (origin-form or absolute-form target)."""
    if "://" in target[:12]:  # absolute-form (through a proxy): keep the path
        rest = target.split("://", 1)[1]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    path, _, query = target.partition("?")
    params = parse_params(query) if query else []
    keys = {k.lower(): v for k, v in params}
    if keys.get("requesttype", "").upper() == "WADO":
        return WebRequest(WADO_URI, "Retrieve object (WADO-URI)", level="instance",
                          study=keys.get("studyuid"), series=keys.get("seriesuid"),
                          instance=keys.get("objectuid"), params=params, root=path)
    segs = [safe_text(unquote(s)) for s in path.split("/")[:64]]
    start = next((i for i, s in enumerate(segs) if s in _ROOTS), None)
    if start is None:
        return WebRequest(None, f"{method} (not a PS3.18 resource)", params=params, root=path)
    root = "/".join(segs[:start])
    res = segs[start:]
    while res and res[-1] == "":
        res.pop()
    if res[0] == "workitems":
        return _ups(method, res, params, root)
    return _studies(method, res, params, root)


def _studies(method: str, res: list[str], params: list[tuple[str, str]],
             root: str) -> WebRequest:
    """studies[/{study}[/series[/{series}[/instances[/{instance}[/frames/{list}]]]]]][/tail]."""
    uids: dict[str, str] = {}
    i = 0
    level = None
    collection = None  # the last collection segment without a UID after it
    names = {"studies": "study", "series": "series", "instances": "instance"}
    while i < len(res) and res[i] in names:
        name = names[res[i]]
        if i + 1 < len(res) and res[i + 1] not in _RENDER + ("metadata", "frames", "bulkdata",
                                                            "series", "instances"):
            uids[name] = res[i + 1]
            level = name
            collection = None
            i += 2
        else:
            collection = res[i]
            i += 1
            break
    tail = res[i:]
    frames: list[int] = []
    if tail and tail[0] == "frames" and level == "instance":
        frames = _frames(tail[1]) if len(tail) > 1 else []
        tail = tail[2:]
        level = "frames"
    common = {"study": uids.get("study"), "series": uids.get("series"),
              "instance": uids.get("instance"), "frames": frames, "params": params,
              "root": root}
    m = method.upper()
    what = {"study": "Study", "series": "Series", "instance": "Instance", "frames": "Frames"}
    if collection is not None and not tail:
        plural = {"studies": "Studies", "series": "Series", "instances": "Instances"}[collection]
        if m in ("GET", "HEAD"):
            scope = {None: "", "study": " of a Study", "series": " of a Series"}.get(level, "")
            return WebRequest(QIDO, f"Search for {plural}{scope}", level=collection, **common)
        if m == "POST" and collection == "studies":
            return WebRequest(STOW, "Store Instances", level=None, **common)
    if "bulkdata" in tail or (not uids and "bulkdata" in res):
        return WebRequest(WADO_RS, "Retrieve Bulkdata", level=level, **common)
    if m == "POST" and level == "study" and not tail and collection is None:
        return WebRequest(STOW, "Store Instances in a Study", level="study", **common)
    if m in ("GET", "HEAD") and level is not None and collection is None:
        if not tail:
            return WebRequest(WADO_RS, f"Retrieve {what[level]}", level=level, **common)
        if tail == ["metadata"]:
            return WebRequest(WADO_RS, f"Retrieve {what[level]} Metadata", level=level,
                              **common)
        if tail[0] in _RENDER and len(tail) == 1:
            kind = "Rendered" if tail[0] == "rendered" else "Thumbnail"
            return WebRequest(WADO_RS, f"Retrieve {kind} {what[level]}", level=level, **common)
    if m == "DELETE" and level is not None:
        return WebRequest(None, f"Delete {what[level]} (not a PS3.18 transaction)",
                          level=level, **common)
    return WebRequest(None, f"{method} (not a PS3.18 resource)", level=level, **common)


def _is_uid(text: str) -> bool:
    """A PS3.5 9.1 UID: at most 64 characters, digits and dots."""
    return 0 < len(text) <= 64 and all(c.isdigit() or c == "." for c in text)


def _ups(method: str, res: list[str], params: list[tuple[str, str]], root: str) -> WebRequest:
    """PS3.18 11: workitems[/{uid}[/state|/cancelrequest|/subscribers/{aet}[/suspend]]]."""
    m = method.upper()
    uid = res[1] if len(res) > 1 else None
    tail = res[2:]
    common = {"workitem": uid, "params": params, "root": root, "level": "workitem"}
    if uid is None:
        if m == "POST":
            # PS3.18 11.4.1: POST /workitems{?workitem}: the UID is the query, a bare value
            # (it is a parameter name without a value to a query parser).
            if params and params[0][1] == "" and _is_uid(params[0][0]):
                common["workitem"] = params[0][0]
            return WebRequest(UPS, "Create Workitem", **common)
        if m in ("GET", "HEAD"):
            return WebRequest(UPS, "Search for Workitems", **common)
    elif not tail:
        if m in ("GET", "HEAD"):
            return WebRequest(UPS, "Retrieve Workitem", **common)
        if m in ("POST", "PUT"):
            return WebRequest(UPS, "Update Workitem", **common)
    elif tail == ["state"] and m in ("PUT", "POST"):
        return WebRequest(UPS, "Change Workitem State", **common)
    elif tail == ["cancelrequest"] and m == "POST":
        return WebRequest(UPS, "Request Cancellation", **common)
    elif tail[0] == "subscribers" and len(tail) >= 2:
        scope = ("Global " if uid == GLOBAL_SUBSCRIPTION else
                 "Filtered Global " if uid == FILTERED_SUBSCRIPTION else "")
        if len(tail) == 3 and tail[2] == "suspend" and m == "POST":
            return WebRequest(UPS, f"Suspend {scope}Subscription", **common)
        if len(tail) == 2 and m == "POST":
            return WebRequest(UPS, f"Create {scope}Subscription", **common)
        if len(tail) == 2 and m == "DELETE":
            return WebRequest(UPS, f"Delete {scope}Subscription", **common)
    return WebRequest(None, f"{method} (not a PS3.18 resource)", **common)
