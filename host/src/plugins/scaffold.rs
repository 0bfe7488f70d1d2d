//! `crmhost plugin new <name> --lang rust|python`: a plugin project that builds and passes
//! `crmhost plugin check` as generated. The Rust one is the SDK README's complete plugin (which
//! the SDK's tests compile); the Python one builds with componentize-py against the contract,
//! which it carries in `wit/`.

use std::path::{Path, PathBuf};

use crate::domain::PluginSlug;

/// The languages a plugin can be scaffolded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust with `crmhost-sdk`, built for `wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
}

/// The contract, copied into a Python project (componentize-py reads the WIT).
const CONTRACT_WIT: &str = include_str!("../../../wit/crm-adapter.wit");
/// The SDK's complete plugin (slug `acme`), compiled by the SDK's tests.
const RUST_PLUGIN: &str = include_str!("../../../sdk/examples/minimal_plugin.rs");
/// The componentize-py the tests build with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Writes a new plugin project for `slug` into `dir` (which must not exist yet); answers the
/// files written. `sdk` is where `crmhost-sdk` is (a path dependency), for Rust.
pub fn scaffold(slug: &str, language: Language, dir: &Path, sdk: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let slug = PluginSlug::parse(slug).map_err(|why| format!("`{slug}` cannot be a plugin slug: {why}"))?;
    if dir.exists() {
        return Err(format!("{} already exists: choose a new directory", dir.display()));
    }
    let files = match language {
        Language::Rust => rust_files(&slug, sdk),
        Language::Python => python_files(&slug),
    };
    let mut written = Vec::with_capacity(files.len());
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The files of a Rust plugin: the SDK's complete plugin under the new slug.
fn rust_files(slug: &PluginSlug, sdk: Option<&Path>) -> Vec<(&'static str, String)> {
    let crate_name = slug.as_str().replace('-', "_");
    let dependency = match sdk {
        Some(path) => format!("crmhost-sdk = {{ path = \"{}\" }}", path.display()),
        None => "crmhost-sdk = { git = \"<the crmhost repository>\" }  # or a path to its sdk/".to_owned(),
    };
    let cargo = format!(
        "[package]\nname = \"{slug}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\n{dependency}\n\n[workspace]\n"
    );
    let body = RUST_PLUGIN.split_once("\n\n").map_or(RUST_PLUGIN, |(_, body)| body);
    let lib = format!(
        "//! The `{slug}` crmhost plugin.\n\n{}",
        body.replace(
            "PluginInfo::builder(\"acme\", \"Acme CRM\"",
            &format!("PluginInfo::builder(\"{slug}\", \"{slug}\"")
        )
        .replace("struct Acme;", &format!("struct {};", type_name(slug)))
        .replace("for Acme {", &format!("for {} {{", type_name(slug)))
        .replace("export_adapter!(Acme)", &format!("export_adapter!({})", type_name(slug)))
        .replace("Acme::", &format!("{}::", type_name(slug)))
    );
    let readme = format!(
        "# {slug}\n\nA crmhost plugin. Build, check, install:\n\n```sh\nrustup target add wasm32-wasip2\n\
         cargo build --release --target wasm32-wasip2\n\
         crmhost plugin check target/wasm32-wasip2/release/{crate_name}.wasm\n\
         {against}\n\
         cp target/wasm32-wasip2/release/{crate_name}.wasm <plugins dir>/.{slug}.wasm.tmp && \
         mv <plugins dir>/.{slug}.wasm.tmp <plugins dir>/{slug}.wasm\n```\n\n\
         Replace the Acme API calls with your CRM's; the SDK README states the contract.\n",
        against = check_against(&format!("target/wasm32-wasip2/release/{crate_name}.wasm")),
    );
    vec![("Cargo.toml", cargo), ("src/lib.rs", lib), ("README.md", readme)]
}

/// The README lines that check a scaffold against crm-sim's Acme, the example CRM it is written for.
fn check_against(wasm: &str) -> String {
    format!(
        "# against the example CRM it is written for: crm-sim's Acme (in crmhost's checkout:\n\
         # cargo run -p crm-sim -- --acme 127.0.0.1:9400)\n\
         crmhost plugin check {wasm} --against http://127.0.0.1:9400"
    )
}

/// `acme-crm` → `AcmeCrm`.
fn type_name(slug: &PluginSlug) -> String {
    slug.as_str()
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The files of a Python plugin: an adapter that pulls, pushes and deletes one entity, the
/// contract, how to build and check it.
fn python_files(slug: &PluginSlug) -> Vec<(&'static str, String)> {
    let app = PYTHON_APP.replace("{slug}", slug.as_str());
    let readme = format!(
        "# {slug}\n\nA crmhost plugin in Python. Build, check, install:\n\n```sh\npython3 -m venv .venv\n\
         .venv/bin/pip install -r requirements.txt\n\
         .venv/bin/componentize-py -d wit -w crm-adapter componentize app -o {slug}.wasm\n\
         crmhost plugin check {slug}.wasm\n{against}\n```\n\n\
         `wit/crm-adapter.wit` is the contract; `.venv/bin/componentize-py -d wit -w crm-adapter bindings .` \
         writes the Python types it defines, for your editor. Each call runs on a fresh instance: keep no \
         state between calls. The only way out is `http.send`, to the hosts `describe()` lists.\n",
        against = check_against(&format!("{slug}.wasm")),
    );
    vec![
        ("app.py", app),
        ("requirements.txt", format!("{COMPONENTIZE_PY}\n")),
        ("wit/crm-adapter.wit", CONTRACT_WIT.to_owned()),
        ("README.md", readme),
    ]
}

const PYTHON_APP: &str = r#""""The `{slug}` crmhost plugin: contacts over a JSON API (crm-sim's Acme, the SDK's example CRM,
until you point it at yours): pull a page per call, upsert on email, delete."""

import json
from typing import List, Optional
from urllib.parse import quote

from componentize_py_types import Err
from wit_world.exports import adapter as a
from wit_world.imports import connection
from wit_world.imports import http
from wit_world.imports import types as t
import wit_world

FIELDS = ["email", "first_name", "last_name"]


def api(path: str) -> str:
    # The base is a setting, so an operator (or `crmhost plugin check --against`) can point it elsewhere.
    return (connection.get("base_url") or "https://api.{slug}.example").rstrip("/") + "/v1/" + path


def info(message: str) -> t.ErrorInfo:
    return t.ErrorInfo(message=message, crm_code=None, field=None)


def not_supported(what: str) -> Err:
    return Err(t.AdapterError_NotSupported(what))


def error_for(status: int, headers: List[tuple], what: str) -> t.AdapterError:
    """A failed answer as the error the host acts on: re-authenticate, wait and retry, or give up."""
    message = f"{what}: the CRM answered {status}"
    if status == 401:
        return t.AdapterError_Unauthorized(info(message))
    if status == 429:
        retry = dict(headers).get("retry-after", "")
        retry_ms = int(retry) * 1000 if retry.isdigit() else None
        return t.AdapterError_RateLimited(t.RateLimitInfo(message=message, policy=t.RateLimitPolicy.BURST,
                                                          retry_after_ms=retry_ms))
    if status >= 500:
        return t.AdapterError_Unavailable(info(message))
    return t.AdapterError_Internal(info(message))


def send(method: http.Method, url: str, body: Optional[dict] = None) -> http.Response:
    """Sends through the host, which attaches the connection's token and checks where it goes."""
    headers = [("content-type", "application/json")] if body is not None else []
    payload = json.dumps(body).encode() if body is not None else None
    try:
        return http.send(http.Request(method=method, url=url, headers=headers, body=payload, timeout_ms=None))
    except Err as err:
        if isinstance(err.value, http.HttpError_NoCredentials):
            # Never authorized, revoked, or the refresh failed: the host marks the connection for re-auth.
            raise Err(t.AdapterError_Unauthorized(info(err.value.value)))
        raise Err(t.AdapterError_Unavailable(info(repr(err.value))))


def get(url: str, what: str) -> dict:
    response = send(http.Method.GET, url)
    if response.status >= 300:
        raise Err(error_for(response.status, response.headers, what))
    return json.loads(response.body)


def value(field: t.FieldValue):
    return None if isinstance(field.value, t.Value_Null) else field.value.value


def record(item: dict) -> a.CrmRecord:
    fields = [t.FieldValue(name, t.Value_Text(item[name]) if item.get(name) else t.Value_Null()) for name in FIELDS]
    return a.CrmRecord(id=str(item["id"]), fields=fields, modified_at=item.get("updated_at"), deleted=False)


class Adapter(wit_world.exports.Adapter):
    def describe(self) -> a.PluginInfo:
        contact = a.EntityInfo(
            name="contact", label="Contact", crm_name="contacts", match_keys=["email"],
            default_mappings=[a.FieldMapping(name, name, a.MappingDirection.BOTH, None) for name in FIELDS])
        auth = [a.AuthInfo_Oauth2(a.Oauth2Info(
            authorize_url="https://login.{slug}.example/oauth/authorize",
            token_url="https://login.{slug}.example/oauth/token", revoke_url=None, scopes=["contacts"],
            optional_scopes=[], scope_separator=" ", pkce=True, extra_authorize_params=[],
            token_response_facts=[]))]
        return a.PluginInfo(
            slug="{slug}", name="{slug}", version="0.1.0", description="Syncs contacts.", auth=auth,
            allowed_hosts=["api.{slug}.example"],
            rate_limits=[a.RateLimit("account", 100, 10_000, "100 requests per 10 s")],
            entities=[contact], capabilities=a.Capabilities.PULL | a.Capabilities.PUSH | a.Capabilities.DELETE,
            settings=[a.SettingInfo("base_url", "The CRM's API base URL.", "https://api.{slug}.example")],
            # Response headers that report the CRM's limits, so the host paces requests by them.
            rate_limit_headers=[
                a.RateLimitHeader("x-ratelimit-limit", a.RateLimitMeasure.WINDOW_LIMIT, None),
                a.RateLimitHeader("x-ratelimit-remaining", a.RateLimitMeasure.WINDOW_REMAINING, None),
            ],
            category=a.Category.CRM, logo_svg=None)

    def test_connection(self) -> a.AccountInfo:
        me = get(api("me"), "reading the account")
        return a.AccountInfo(account_id=str(me.get("account_id", "")), label=me.get("name", "{slug} account"),
                             user=me.get("email"), details=[])

    def list_fields(self, entity: str) -> List[a.FieldInfo]:
        raise not_supported("list-fields")

    def pull(self, request: a.PullRequest) -> a.Page:
        # One page per call: the host passes back the cursor this page returns.
        url = api(f"contacts?limit={request.limit}")
        if request.cursor:
            url += f"&after={quote(request.cursor)}"
        if request.ids:
            url += f"&ids={quote(','.join(request.ids))}"
        if request.modified_since:
            url += f"&updated_since={quote(request.modified_since)}"
        body = get(url, "listing contacts")
        return a.Page(records=[record(item) for item in body.get("items", [])], next_cursor=body.get("next"))

    def push(self, entity: str, match_key: str, records: List[a.PushRecord]) -> List[a.PushOutcome]:
        # One outcome per record, in input order; one record failing never fails the others.
        outcomes = []
        for pushed in records:
            fields = {f.name: value(f) for f in pushed.fields}
            if pushed.crm_id:
                response = send(http.Method.PATCH, api(f"contacts/{quote(pushed.crm_id)}"), fields)
            else:
                response = send(http.Method.PUT, api(f"contacts?upsert_on={quote(match_key)}"), fields)
            if response.status in (200, 201):
                written = str(json.loads(response.body)["id"])
                outcomes.append(a.PushOutcome_Created(written) if response.status == 201 else a.PushOutcome_Updated(written))
            elif response.status in (404, 422):
                outcomes.append(a.PushOutcome_Failed(t.AdapterError_Invalid(info(response.body.decode(errors="replace")))))
            else:
                # 401, 429, 5xx end the call: the host re-authenticates or retries.
                raise Err(error_for(response.status, response.headers, "pushing a contact"))
        return outcomes

    def delete(self, entity: str, ids: List[str]) -> List[a.DeleteOutcome]:
        outcomes = []
        for crm_id in ids:
            response = send(http.Method.DELETE, api(f"contacts/{quote(crm_id)}"))
            if response.status in (200, 204, 404):
                # Already gone counts as deleted: deletes are retried and must be idempotent.
                outcomes.append(a.DeleteOutcome_Deleted())
            else:
                raise Err(error_for(response.status, response.headers, "deleting a contact"))
        return outcomes

    def parse_webhook(self, request: a.WebhookRequest) -> List[a.ChangeEvent]:
        raise not_supported("webhooks")
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bad_slug_or_an_existing_directory_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let err = scaffold("Acme CRM", Language::Python, &dir.path().join("x"), None).unwrap_err();
        assert!(err.contains("cannot be a plugin slug"), "{err}");
        assert!(!dir.path().join("x").exists());
        let err = scaffold("acme", Language::Rust, dir.path(), None).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn the_rust_plugin_is_the_sdk_example_under_the_new_slug() {
        let dir = tempfile::tempdir().unwrap();
        scaffold("acme-crm", Language::Rust, &dir.path().join("p"), None).unwrap();
        let lib = std::fs::read_to_string(dir.path().join("p/src/lib.rs")).unwrap();
        assert!(
            lib.contains("PluginInfo::builder(\"acme-crm\", \"acme-crm\"") && lib.contains("struct AcmeCrm;"),
            "{lib}"
        );
        assert!(lib.contains("export_adapter!(AcmeCrm)") && !lib.contains("Acme;"), "{lib}");
        // Its unit tests (against the SDK's fake host) call the renamed adapter.
        assert!(lib.contains("AcmeCrm::pull(") && !lib.contains(" Acme::"), "{lib}");
        let cargo = std::fs::read_to_string(dir.path().join("p/Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"acme-crm\"") && cargo.contains("crmhost-sdk ="), "{cargo}");
    }
}
