"""The Pipedrive crmhost plugin, in Python (contract crmhost:adapter@0.2.0, built with componentize-py).

Persons, organizations and deals through Pipedrive's API v2 (cursor-paginated lists, search for
upsert matching, create / update / delete) and v1 `recents` for incremental pulls, which also
reports deletions. Connections authenticate with OAuth 2.0 (the host runs the flow; `api_domain`
from the token answer is where the company's API lives) or an API token the host sends as
`x-api-token`. The host paces requests by the `x-ratelimit-*` headers declared below.

Records cross the boundary flattened: a person's primary email is the field `email`, its primary
phone `phone`; ids of related records (`org_id`, `person_id`, `owner_id`) are numbers.
"""

import json
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

from componentize_py_types import Err
from wit_world.exports import adapter as a
from wit_world.imports import connection
from wit_world.imports import http
from wit_world.imports import types as t
import wit_world

DEFAULT_BASE_URL = "https://api.pipedrive.com"
MAX_PAGE = 500

LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="Pipedrive">'
        '<rect width="64" height="64" rx="14" fill="#1a1a1a"/>'
        '<path d="M26 14h9c8 0 14 6 14 14s-6 14-14 14h-3v10h-6z M32 21v14h3c4 0 7-3 7-7s-3-7-7-7z" fill="#fff"/></svg>')

# Host-level entity → (Pipedrive path, singular item name, what errors call it, its match keys).
ENTITIES: Dict[str, Tuple[str, str, str, List[str]]] = {
    "contact": ("persons", "person", "Person", ["email", "name"]),
    "company": ("organizations", "organization", "Organization", ["name"]),
    "deal": ("deals", "deal", "Deal", ["title"]),
}

# The flattened fields each kind carries, and whether they are numbers.
FIELDS: Dict[str, List[Tuple[str, str]]] = {
    "persons": [("name", "text"), ("first_name", "text"), ("last_name", "text"), ("email", "text"),
                ("phone", "text"), ("org_id", "id"), ("owner_id", "id")],
    "organizations": [("name", "text"), ("address", "text"), ("owner_id", "id")],
    "deals": [("title", "text"), ("value", "number"), ("currency", "text"), ("status", "text"),
              ("expected_close_date", "date"), ("stage_id", "id"), ("person_id", "id"), ("org_id", "id"),
              ("owner_id", "id")],
}


def info(message: str, code: Optional[str] = None, field: Optional[str] = None) -> t.ErrorInfo:
    return t.ErrorInfo(message=message, crm_code=code, field=field)


def base_url() -> str:
    # OAuth connections carry the company's API domain; an operator (or the sandbox) may set one.
    return (connection.get("api_domain") or connection.get("base_url") or DEFAULT_BASE_URL).rstrip("/")


def kind_of(entity: str) -> Tuple[str, str, str, List[str]]:
    found = ENTITIES.get(entity)
    if found is None:
        raise Err(t.AdapterError_NotSupported(f"Pipedrive has no entity `{entity}`"))
    return found


def error_for(status: int, headers: List[Tuple[str, str]], body: bytes, what: str) -> t.AdapterError:
    """Pipedrive's answer as the contract's error: its `error` text, the kind by status."""
    try:
        message = json.loads(body).get("error") or f"HTTP {status}"
    except (ValueError, AttributeError):
        message = f"HTTP {status}"
    message = f"{what}: {message}"
    if status == 401:
        return t.AdapterError_Unauthorized(info(message))
    if status == 403:
        return t.AdapterError_Forbidden(info(message))
    if status == 404:
        return t.AdapterError_NotFound(info(message))
    if status == 429:
        reset = dict(headers).get("x-ratelimit-reset")
        retry_ms = int(float(reset) * 1000) if reset and reset.replace(".", "", 1).isdigit() else 2000
        return t.AdapterError_RateLimited(t.RateLimitInfo(message=message, policy=t.RateLimitPolicy.BURST,
                                                          retry_after_ms=retry_ms))
    if status in (400, 422):
        return t.AdapterError_Invalid(info(message))
    if status >= 500:
        return t.AdapterError_Unavailable(info(message))
    return t.AdapterError_Internal(info(message))


def call(method: http.Method, path: str, what: str, body: Optional[dict] = None) -> Tuple[int, list, dict]:
    """Sends a request through the host (which adds the credential); transport problems become errors."""
    headers = [("accept", "application/json")]
    payload = None
    if body is not None:
        headers.append(("content-type", "application/json"))
        payload = json.dumps(body).encode()
    request = http.Request(method=method, url=f"{base_url()}{path}", headers=headers, body=payload, timeout_ms=None)
    try:
        response = http.send(request)
    except Err as err:
        problem = err.value
        if isinstance(problem, http.HttpError_NoCredentials):
            raise Err(t.AdapterError_Unauthorized(info(f"no usable credentials: {problem.value}")))
        if isinstance(problem, (http.HttpError_Timeout, http.HttpError_Connection)):
            raise Err(t.AdapterError_Unavailable(info(f"{what}: Pipedrive could not be reached")))
        raise Err(t.AdapterError_Internal(info(f"{what}: the host refused the request ({problem})")))
    try:
        parsed = json.loads(response.body) if response.body else {}
    except ValueError:
        parsed = {}
    return response.status, response.headers, parsed


def ok_or_raise(status: int, headers: list, parsed: dict, what: str) -> dict:
    if 200 <= status < 300 and parsed.get("success", True):
        return parsed
    raise Err(error_for(status, headers, json.dumps(parsed).encode(), what))


def get(path: str, what: str) -> dict:
    return ok_or_raise(*call(http.Method.GET, path, what), what)


# Values: Pipedrive JSON ⇄ the contract's typed values.

def to_value(raw, kind: str) -> t.Value:
    if raw is None or raw == "":
        return t.Value_Null()
    if kind in ("id", "number"):
        if isinstance(raw, dict):  # v1 shapes: {"value": 7, "name": …} or {"id": 7, …}
            raw = raw.get("value", raw.get("id"))
        try:
            return t.Value_Number(float(raw))
        except (TypeError, ValueError):
            return t.Value_Null()
    if kind == "date":
        return t.Value_Date(str(raw))
    return t.Value_Text(str(raw))


def primary(items) -> Optional[str]:
    if not isinstance(items, list) or not items:
        return None
    chosen = next((i for i in items if isinstance(i, dict) and i.get("primary")), items[0])
    return chosen.get("value") if isinstance(chosen, dict) else str(chosen)


def instant(text: Optional[str]) -> Optional[str]:
    """`2026-01-02T03:04:05Z` or v1's `2026-01-02 03:04:05` → RFC 3339."""
    if not text:
        return None
    return text if "T" in text else text.replace(" ", "T") + "Z"


def flatten(path: str, item: dict) -> List[t.FieldValue]:
    values = dict(item)
    if path == "persons":
        values["email"] = primary(item.get("emails", item.get("email")))
        values["phone"] = primary(item.get("phones", item.get("phone")))
    if path == "organizations" and isinstance(item.get("address"), dict):
        values["address"] = item["address"].get("value")
    return [t.FieldValue(name, to_value(values.get(name), kind)) for name, kind in FIELDS[path]]


def record_of(path: str, item: dict, deleted: bool = False) -> a.CrmRecord:
    return a.CrmRecord(id=str(item["id"]), fields=flatten(path, item), modified_at=instant(item.get("update_time")),
                       deleted=deleted)


def plain(value: t.Value):
    if isinstance(value, t.Value_Null):
        return None
    return value.value


def body_for(path: str, fields: List[t.FieldValue], creating: bool) -> dict:
    """The v2 request body for flattened fields; unknown fields are the caller's mistake."""
    known = dict(FIELDS[path])
    body: dict = {}
    for field in fields:
        if field.name not in known:
            raise ValueError(field.name)
        value = plain(field.value)
        kind = known[field.name]
        if kind == "id":
            value = None if value is None else int(float(value))
        elif kind == "number":
            value = 0.0 if value is None else float(value)
        if path == "persons" and field.name in ("email", "phone"):
            body[field.name + "s"] = [] if value is None else [{"value": str(value), "primary": True, "label": "work"}]
        elif path == "organizations" and field.name == "address":
            body["address"] = None if value is None else {"value": str(value)}
        else:
            body[field.name] = value
    if path == "persons" and "name" not in body and ("first_name" in body or "last_name" in body):
        full = " ".join(p for p in (body.get("first_name"), body.get("last_name")) if p)
        if full:
            body["name"] = full
    if path == "persons" and creating and not body.get("name"):
        email = body.get("emails") and body["emails"][0]["value"]
        if email:
            body["name"] = email
    return body


def find_match(path: str, match_key: str, value: Optional[str], what: str) -> List[int]:
    """Ids of records whose `match_key` equals `value`, through Pipedrive's exact search."""
    if not value:
        return []
    searched = {"email": "email", "name": "name", "title": "title"}.get(match_key)
    if searched is None:
        raise Err(t.AdapterError_Invalid(info(f"`{match_key}` cannot be matched on in Pipedrive", field=match_key)))
    found = get(f"/api/v2/{path}/search?term={quote(value)}&fields={searched}&exact_match=true&limit=10", what)
    return [entry["item"]["id"] for entry in (found.get("data") or {}).get("items", [])]


class Adapter(wit_world.exports.Adapter):
    def describe(self) -> a.PluginInfo:
        oauth = a.AuthInfo_Oauth2(a.Oauth2Info(
            authorize_url="https://oauth.pipedrive.com/oauth/authorize",
            token_url="https://oauth.pipedrive.com/oauth/token",
            revoke_url="https://oauth.pipedrive.com/oauth/revoke",
            scopes=["base", "contacts:full", "deals:full"], optional_scopes=[], scope_separator=" ", pkce=False,
            extra_authorize_params=[], token_response_facts=["api_domain"]))
        token = a.AuthInfo_ApiKey(a.ApiKeyInfo(
            placement=a.ApiKeyPlacement_Header(a.ApiKeyHeader(name="x-api-token", prefix="")),
            label="API token", help="In Pipedrive: your name → Personal preferences → API."))
        contact = a.EntityInfo(
            name="contact", label="Person", crm_name="persons", match_keys=["email", "name"],
            default_mappings=[
                a.FieldMapping("email", "email", a.MappingDirection.BOTH, "lowercase"),
                a.FieldMapping("first_name", "first_name", a.MappingDirection.BOTH, None),
                a.FieldMapping("last_name", "last_name", a.MappingDirection.BOTH, None),
                a.FieldMapping("phone", "phone", a.MappingDirection.BOTH, None),
            ])
        company = a.EntityInfo(
            name="company", label="Organization", crm_name="organizations", match_keys=["name"],
            default_mappings=[a.FieldMapping("name", "name", a.MappingDirection.BOTH, None),
                              a.FieldMapping("address", "address", a.MappingDirection.BOTH, None)])
        deal = a.EntityInfo(
            name="deal", label="Deal", crm_name="deals", match_keys=["title"],
            default_mappings=[a.FieldMapping("name", "title", a.MappingDirection.BOTH, None),
                              a.FieldMapping("amount", "value", a.MappingDirection.BOTH, None),
                              a.FieldMapping("close_date", "expected_close_date", a.MappingDirection.BOTH, None)])
        return a.PluginInfo(
            slug="pipedrive", name="Pipedrive", version="0.1.0",
            description="Syncs persons, organizations and deals with Pipedrive (API v2; v1 recents for "
                        "incremental pulls and deletions). Written in Python.",
            auth=[oauth, token],
            allowed_hosts=["api.pipedrive.com", "*.pipedrive.com", "oauth.pipedrive.com"],
            rate_limits=[a.RateLimit("token-burst", 80, 2_000,
                                     "Requests per rolling 2 s per user token (the Essential plan's; higher plans allow more).")],
            entities=[contact, company, deal],
            capabilities=a.Capabilities.PUSH | a.Capabilities.PULL | a.Capabilities.INCREMENTAL | a.Capabilities.DELETE,
            settings=[a.SettingInfo("base_url", "Pipedrive's API base URL when the token answer names none.",
                                    DEFAULT_BASE_URL)],
            rate_limit_headers=[
                a.RateLimitHeader("x-ratelimit-limit", a.RateLimitMeasure.WINDOW_LIMIT, None),
                a.RateLimitHeader("x-ratelimit-remaining", a.RateLimitMeasure.WINDOW_REMAINING, None),
                a.RateLimitHeader("x-ratelimit-reset", a.RateLimitMeasure.WINDOW_RESET_SECONDS, None),
            ],
            category=a.Category.CRM, logo_svg=LOGO)

    def test_connection(self) -> a.AccountInfo:
        me = get("/v1/users/me", "test-connection")["data"]
        company = me.get("company_name") or "Pipedrive"
        return a.AccountInfo(
            account_id=str(me.get("company_id", "")), label=f"{company} ({me.get('email', '')})",
            user=me.get("email"),
            details=[("owner_id", str(me.get("id", ""))), ("company_domain", str(me.get("company_domain", "")))])

    def list_fields(self, entity: str) -> List[a.FieldInfo]:
        path, singular, _, match_keys = kind_of(entity)
        listed = get(f"/v1/{singular}Fields", "list-fields").get("data") or []
        by_key = {f.get("key"): f for f in listed}
        types = {"id": a.FieldType.REFERENCE, "number": a.FieldType.CURRENCY, "date": a.FieldType.DATE,
                 "text": a.FieldType.TEXT}
        out = []
        for name, kind in FIELDS[path]:
            described = by_key.get(name, {})
            field_type = a.FieldType.EMAIL if name == "email" else a.FieldType.PHONE if name == "phone" else types[kind]
            options = [o.get("label", "") for o in described.get("options") or [] if o.get("label") != "deleted"]
            if name == "status":
                field_type = a.FieldType.PICKLIST
            out.append(a.FieldInfo(name=name, label=described.get("name", name), field_type=field_type,
                                   required=bool(described.get("mandatory_flag")),
                                   writable=bool(described.get("edit_flag", True)), unique=name in match_keys[:1],
                                   options=options))
        return out

    def pull(self, request: a.PullRequest) -> a.Page:
        path, singular, _, _ = kind_of(request.entity)
        limit = max(1, min(request.limit, MAX_PAGE))
        if request.ids:
            return self.pull_ids(path, request.ids)
        if request.modified_since is None:
            query = f"/api/v2/{path}?limit={limit}"
            if request.cursor:
                query += f"&cursor={quote(request.cursor.removeprefix('v2:'))}"
            page = get(query, "pull")
            records = [record_of(path, item) for item in page.get("data") or []]
            following = (page.get("additional_data") or {}).get("next_cursor")
            return a.Page(records=records, next_cursor=f"v2:{following}" if following else None)
        # Incremental: every change since the instant, oldest first, deletions included.
        since = datetime.fromisoformat(request.modified_since.replace("Z", "+00:00")).astimezone(timezone.utc)
        start = int(request.cursor.removeprefix("r:")) if request.cursor else 0
        stamp = quote(since.strftime("%Y-%m-%d %H:%M:%S"))
        page = get(f"/v1/recents?since_timestamp={stamp}&items={singular}&start={start}&limit={limit}", "pull")
        records = []
        for change in page.get("data") or []:
            item = change.get("data") or {}
            if "id" not in item:
                continue
            gone = item.get("active_flag") is False or item.get("deleted") is True or item.get("status") == "deleted"
            records.append(record_of(path, item, deleted=gone))
        paging = (page.get("additional_data") or {}).get("pagination") or {}
        following = paging.get("next_start") if paging.get("more_items_in_collection") else None
        return a.Page(records=records, next_cursor=f"r:{following}" if following is not None else None)

    def pull_ids(self, path: str, ids: List[str]) -> a.Page:
        numeric = [i for i in ids if i.isdigit()]
        found = {}
        for chunk in range(0, len(numeric), 100):
            part = ",".join(numeric[chunk:chunk + 100])
            for item in get(f"/api/v2/{path}?ids={part}&limit={MAX_PAGE}", "pull").get("data") or []:
                found[str(item["id"])] = item
        # An id Pipedrive no longer lists was deleted.
        records = [record_of(path, found[i]) if i in found else a.CrmRecord(id=i, fields=[], modified_at=None,
                                                                             deleted=True) for i in ids]
        return a.Page(records=records, next_cursor=None)

    def push(self, entity: str, match_key: str, records: List[a.PushRecord]) -> List[a.PushOutcome]:
        path, _, title, _ = kind_of(entity)
        return [self.push_one(path, title, match_key, record) for record in records]

    def push_one(self, path: str, title: str, match_key: str, record: a.PushRecord) -> a.PushOutcome:
        target = record.crm_id
        if target is None:
            key = next((plain(f.value) for f in record.fields if f.name == match_key), None)
            matches = find_match(path, match_key, None if key is None else str(key), "push")
            if len(matches) > 1:
                return a.PushOutcome_Failed(t.AdapterError_Duplicate(t.DuplicateInfo(
                    message=f"{len(matches)} {path} have this {match_key}; resolve them in Pipedrive",
                    crm_code=None, existing_id=str(matches[0]))))
            target = str(matches[0]) if matches else None
        try:
            body = body_for(path, record.fields, creating=target is None)
        except ValueError as unknown:
            return a.PushOutcome_Failed(t.AdapterError_Invalid(info(f"{title} has no field `{unknown}`",
                                                                    field=str(unknown))))
        if target is None:
            status, headers, parsed = call(http.Method.POST, f"/api/v2/{path}", "push", body)
        else:
            status, headers, parsed = call(http.Method.PATCH, f"/api/v2/{path}/{target}", "push", body)
        if 200 <= status < 300:
            new_id = str(parsed["data"]["id"])
            return a.PushOutcome_Created(new_id) if target is None else a.PushOutcome_Updated(new_id)
        problem = error_for(status, headers, json.dumps(parsed).encode(), "push")
        # Only what concerns this record fails it alone; a refused token, a limit or an outage stops the call.
        if status in (400, 404, 422):
            return a.PushOutcome_Failed(problem)
        raise Err(problem)

    def delete(self, entity: str, ids: List[str]) -> List[a.DeleteOutcome]:
        path, _, _, _ = kind_of(entity)
        outcomes = []
        for crm_id in ids:
            if not crm_id.isdigit():
                outcomes.append(a.DeleteOutcome_Deleted())
                continue
            status, headers, parsed = call(http.Method.DELETE, f"/api/v2/{path}/{crm_id}", "delete")
            if 200 <= status < 300 or status == 404:
                outcomes.append(a.DeleteOutcome_Deleted())
            elif status in (400, 422):
                outcomes.append(a.DeleteOutcome_Failed(error_for(status, headers, json.dumps(parsed).encode(), "delete")))
            else:
                raise Err(error_for(status, headers, json.dumps(parsed).encode(), "delete"))
        return outcomes

    def parse_webhook(self, request: a.WebhookRequest) -> List[a.ChangeEvent]:
        raise Err(t.AdapterError_NotSupported("Pipedrive webhooks are not handled yet; incremental pulls see every change"))
