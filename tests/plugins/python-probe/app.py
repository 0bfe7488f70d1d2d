"""A minimal plugin written in Python (slug `python-probe`), built by the tests with componentize-py.

It proves the host runs a component from another toolchain: CPython inside, about 14 core
module instances, WASI sockets imported (always denied by the host). `list-fields(entity)`
answers one field named after the entity; `get:<url>` sends a GET through the host's `http.send`
and answers `status:<code>:<body, up to 200 bytes>`, or raises `internal` with the host's error.
It authenticates with an API key (contract 0.2), which the host adds to each request as
`x-probe-key: Key <key>`, and declares its category and logo.
"""

from typing import List

from componentize_py_types import Err
from wit_world.exports import adapter as a
from wit_world.imports import connection
from wit_world.imports import http
from wit_world.imports import types as t
import wit_world


def field(name: str) -> List[a.FieldInfo]:
    return [a.FieldInfo(name=name, label=name, field_type=a.FieldType.TEXT, required=False,
                        writable=False, unique=False, options=[])]


LOGO = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle cx="4" cy="4" r="4" fill="#3776ab"/></svg>'


def not_supported() -> Err:
    return Err(t.AdapterError_NotSupported("the probe only describes itself and lists fields"))


class Adapter(wit_world.exports.Adapter):
    def describe(self) -> a.PluginInfo:
        contact = a.EntityInfo(
            name="contact", label="Contact", crm_name="people", match_keys=["email"],
            default_mappings=[a.FieldMapping("email", "email", a.MappingDirection.BOTH, None)])
        # An API key the host puts in `x-probe-key: Key <key>`; the probe never sees it.
        auth = [a.AuthInfo_ApiKey(a.ApiKeyInfo(
            placement=a.ApiKeyPlacement_Header(a.ApiKeyHeader(name="x-probe-key", prefix="Key ")),
            label="Probe key", help="Any text: the probe's server echoes it."))]
        return a.PluginInfo(
            slug="python-probe", name="Python probe", version="0.1.0",
            description="A minimal plugin written in Python.", auth=auth,
            allowed_hosts=["127.0.0.1"], rate_limits=[], entities=[contact],
            capabilities=a.Capabilities(0), settings=[], rate_limit_headers=[], category=a.Category.SUPPORT,
            logo_svg=LOGO)

    def test_connection(self) -> a.AccountInfo:
        """Asks `<base_url>/probe-key` (an operator setting) whether the key the host attached is good."""
        base = connection.get("base_url")
        if base is None:
            raise not_supported()
        request = http.Request(method=http.Method.GET, url=f"{base}/probe-key", headers=[], body=None, timeout_ms=None)
        try:
            response = http.send(request)
        except Err as err:
            if isinstance(err.value, http.HttpError_NoCredentials):
                raise Err(t.AdapterError_Unauthorized(t.ErrorInfo(message=err.value.value, crm_code=None, field=None)))
            raise Err(t.AdapterError_Unavailable(t.ErrorInfo(message=repr(err.value), crm_code=None, field=None)))
        if response.status == 401:
            raise Err(t.AdapterError_Unauthorized(t.ErrorInfo(message="the key was refused", crm_code=None, field=None)))
        if response.status != 200:
            message = f"the server answered {response.status}"
            raise Err(t.AdapterError_Unavailable(t.ErrorInfo(message=message, crm_code=None, field=None)))
        return a.AccountInfo(account_id="probe-account", label="Probe account", user=None, details=[])

    def list_fields(self, entity: str) -> List[a.FieldInfo]:
        if entity.startswith("get:"):
            request = http.Request(method=http.Method.GET, url=entity[4:], headers=[], body=None, timeout_ms=None)
            try:
                response = http.send(request)
            except Err as err:
                raise Err(t.AdapterError_Internal(t.ErrorInfo(message=repr(err.value), crm_code=None, field=None)))
            return field(f"status:{response.status}:{response.body[:200].decode(errors='replace')}")
        return field(entity)

    def pull(self, request: a.PullRequest) -> a.Page:
        raise not_supported()

    def push(self, entity: str, match_key: str, records: List[a.PushRecord]) -> List[a.PushOutcome]:
        raise not_supported()

    def delete(self, entity: str, ids: List[str]) -> List[a.DeleteOutcome]:
        raise not_supported()

    def parse_webhook(self, request: a.WebhookRequest) -> List[a.ChangeEvent]:
        raise not_supported()
