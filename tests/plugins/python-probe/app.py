"""A minimal plugin written in Python (slug `python-probe`), built by the tests with componentize-py.

It proves the host runs a component from another toolchain: CPython inside, about 40 core
module instances, WASI sockets imported (always denied by the host). `list-fields(entity)`
answers one field named after the entity; `get:<url>` sends a GET through the host's `http.send`
and answers `status:<code>:<body length>`, or raises `internal` with the host's error.
"""

from typing import List

from componentize_py_types import Err
from wit_world.exports import adapter as a
from wit_world.imports import http
from wit_world.imports import types as t
import wit_world


def field(name: str) -> List[a.FieldInfo]:
    return [a.FieldInfo(name=name, label=name, field_type=a.FieldType.TEXT, required=False,
                        writable=False, unique=False, options=[])]


def not_supported() -> Err:
    return Err(t.AdapterError_NotSupported("the probe only describes itself and lists fields"))


class Adapter(wit_world.exports.Adapter):
    def describe(self) -> a.PluginInfo:
        contact = a.EntityInfo(
            name="contact", label="Contact", crm_name="people", match_keys=["email"],
            default_mappings=[a.FieldMapping("email", "email", a.MappingDirection.BOTH, None)])
        return a.PluginInfo(
            slug="python-probe", name="Python probe", version="0.1.0",
            description="A minimal plugin written in Python.", auth=a.AuthInfo_None_(),
            allowed_hosts=["127.0.0.1"], rate_limits=[], entities=[contact],
            capabilities=a.Capabilities(0), settings=[])

    def test_connection(self) -> a.AccountInfo:
        raise not_supported()

    def list_fields(self, entity: str) -> List[a.FieldInfo]:
        if entity.startswith("get:"):
            request = http.Request(method=http.Method.GET, url=entity[4:], headers=[], body=None, timeout_ms=None)
            try:
                response = http.send(request)
            except Err as err:
                raise Err(t.AdapterError_Internal(t.ErrorInfo(message=repr(err.value), crm_code=None, field=None)))
            return field(f"status:{response.status}:{len(response.body)}")
        return field(entity)

    def pull(self, request: a.PullRequest) -> a.Page:
        raise not_supported()

    def push(self, entity: str, match_key: str, records: List[a.PushRecord]) -> List[a.PushOutcome]:
        raise not_supported()

    def delete(self, entity: str, ids: List[str]) -> List[a.DeleteOutcome]:
        raise not_supported()

    def parse_webhook(self, request: a.WebhookRequest) -> List[a.ChangeEvent]:
        raise not_supported()
