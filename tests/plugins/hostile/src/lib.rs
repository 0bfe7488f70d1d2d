//! A hostile test plugin (slug `hostile`): `list-fields(entity)` performs the attack the entity
//! names, so each sandbox limit can be tested both kept and broken from one component.
//!
//! - `loop`: spins forever.
//! - `hog:<MiB>`: allocates and touches that much memory.
//! - `panic`: panics.
//! - `get:<url>`: GETs the URL; `auth:<url>` does so with its own `Authorization` header.
//! - `post:<bytes>:<url>`: POSTs a body of that size.
//! - `log-flood`: writes 10,000 log lines.
//! - `tcp:<address>`: opens a TCP connection itself through WASI sockets, around `http.send`.
//!
//! Success is one field whose name is `status:<code>:<body length>`; an HTTP error comes back as an
//! `internal` adapter error whose message is the host's `http-error`, debug-printed.

use crmhost_sdk::bindings::crmhost::adapter::http as host;
use crmhost_sdk::prelude::*;

/// The hostile adapter.
pub struct Hostile;

fn field(name: String) -> Vec<FieldInfo> {
    vec![FieldInfo {
        name,
        label: String::new(),
        field_type: FieldType::Text,
        required: false,
        writable: false,
        unique: false,
        options: Vec::new(),
    }]
}

fn send(method: Method, url: &str, headers: Vec<(String, String)>, body: Option<Vec<u8>>) -> Result<Vec<FieldInfo>> {
    let request = host::Request { method, url: url.to_owned(), headers, body, timeout_ms: None };
    match host::send(&request) {
        Ok(resp) => Ok(field(format!("status:{}:{}", resp.status, resp.body.len()))),
        Err(err) => Err(AdapterError::internal(format!("{err:?}"))),
    }
}

impl Adapter for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::builder("hostile", "Hostile", "0.0.1")
            .description("Attacks the sandbox on request.")
            // Declared on purpose: the private-address check must stop these even when declared.
            .allowed_host("127.0.0.1")
            .allowed_host("localhost")
            .allowed_host("169.254.169.254")
            .allowed_host("allowed.invalid")
            .build()
    }

    fn list_fields(entity: String) -> Result<Vec<FieldInfo>> {
        if entity == "loop" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if entity == "panic" {
            panic!("hostile plugin panicked on purpose");
        }
        if entity == "log-flood" {
            for i in 0..10_000 {
                crmhost_sdk::log::info(&format!("flood line {i}"));
            }
            return Ok(field("flooded".to_owned()));
        }
        if let Some(mib) = entity.strip_prefix("hog:") {
            let mib: usize = mib.parse().map_err(|_| AdapterError::invalid("hog:<MiB>"))?;
            let mut chunks = Vec::new();
            for _ in 0..mib {
                // Touch every page so the memory is really committed.
                chunks.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
            return Ok(field(format!("allocated:{}", chunks.len())));
        }
        if let Some(address) = entity.strip_prefix("tcp:") {
            return match std::net::TcpStream::connect(address) {
                Ok(_) => Ok(field("connected".to_owned())),
                Err(err) => Err(AdapterError::internal(format!("tcp: {err}"))),
            };
        }
        if let Some(url) = entity.strip_prefix("get:") {
            return send(Method::Get, url, Vec::new(), None);
        }
        if let Some(url) = entity.strip_prefix("auth:") {
            return send(Method::Get, url, vec![("Authorization".to_owned(), "Bearer stolen".to_owned())], None);
        }
        if let Some(rest) = entity.strip_prefix("post:") {
            let (size, url) = rest.split_once(':').ok_or_else(|| AdapterError::invalid("post:<bytes>:<url>"))?;
            let size: usize = size.parse().map_err(|_| AdapterError::invalid("post:<bytes>:<url>"))?;
            return send(Method::Post, url, Vec::new(), Some(vec![b'x'; size]));
        }
        Ok(field("ok".to_owned()))
    }
}

crmhost_sdk::export_adapter!(Hostile);
