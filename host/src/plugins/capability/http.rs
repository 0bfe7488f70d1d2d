//! `http.send`: outbound HTTP for plugins, behind the egress policy.
//!
//! Order of checks, cheapest first and before anything leaves the host: request count, URL and
//! host against the allowed hosts, forbidden headers, body size. Addresses are checked after DNS
//! resolution by the client's resolver ([`PolicyResolver`]). Redirects are returned to the plugin,
//! never followed, so each hop is checked again. The connection's credential is attached here and
//! nowhere else, where the plugin's auth scheme puts it ([`CredentialPlacement`]: a bearer token, an
//! API key in a header or the query, HTTP Basic); after a 401 the credential source is asked once
//! for a fresh one.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use url::Url;

use crate::plugins::bindings::crmhost::adapter::http::{self, HttpError, Method, Request, Response};
use crate::plugins::context::CredentialSource;
use crate::plugins::description::{ApiKeyPlacement, AuthDescription, AuthKind, AuthSchemes};
use crate::plugins::egress::{EgressPolicy, PolicyResolver, ResolveDenied};
use crate::plugins::limits::PluginLimits;
use crate::plugins::pacing::AccountPacer;
use crate::plugins::runtime::CallState;

/// Headers a plugin may not set: credentials are the host's, and hop-by-hop headers are the client's.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "connection",
    "cookie",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "expect",
];

/// Whether a plugin may set this header.
pub(crate) fn header_forbidden(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    FORBIDDEN_HEADERS.contains(&name.as_str()) || name.starts_with("proxy-")
}

/// Where the connection's secret goes on each request, from the plugin's auth scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialPlacement {
    /// `Authorization: Bearer <token>` (OAuth 2.0, and plugins without credentials).
    Bearer,
    /// `<name>: <prefix><key>`.
    Header {
        /// The header, lower-case.
        name: String,
        /// Before the key.
        prefix: String,
    },
    /// `?<name>=<key>`.
    Query {
        /// The parameter.
        name: String,
    },
    /// `Authorization: Basic base64(<user>:<password>)`; the stored secret is `user:password`.
    Basic,
}

impl CredentialPlacement {
    /// The placement a connection authenticated with `kind` needs (bearer when the plugin does
    /// not offer that kind: nothing is attached without a credential anyway).
    pub fn for_kind(schemes: &AuthSchemes, kind: Option<AuthKind>) -> Self {
        match kind.and_then(|kind| schemes.of(kind)) {
            Some(AuthDescription::ApiKey(key)) => match &key.placement {
                ApiKeyPlacement::Header { name, prefix } => Self::Header { name: name.clone(), prefix: prefix.clone() },
                ApiKeyPlacement::Query { name } => Self::Query { name: name.clone() },
            },
            Some(AuthDescription::Basic(_)) => Self::Basic,
            Some(AuthDescription::Oauth2(_)) | None => Self::Bearer,
        }
    }

    /// Whether the plugin set, in its own request, what this placement reserves for the host.
    fn reserved_in(&self, url: &Url, headers: &[(String, String)]) -> Option<String> {
        match self {
            Self::Header { name, .. } => {
                headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(n, _)| format!("header `{n}`"))
            }
            Self::Query { name } => {
                url.query_pairs().any(|(k, _)| k == name.as_str()).then(|| format!("query parameter `{name}`"))
            }
            Self::Bearer | Self::Basic => None,
        }
    }

    /// The header that carries `secret`, or `None` when it travels in the query ([`Self::add_to_query`]).
    fn header(
        &self,
        secret: &SecretString,
    ) -> Result<Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, HttpError> {
        use base64::Engine as _;
        let sensitive = |text: String| {
            let mut value = reqwest::header::HeaderValue::from_str(&text).map_err(|_| {
                HttpError::NoCredentials("the stored credential is not a valid header value".to_owned())
            })?;
            value.set_sensitive(true);
            Ok::<_, HttpError>(value)
        };
        let authorization = reqwest::header::AUTHORIZATION;
        Ok(Some(match self {
            Self::Bearer => (authorization, sensitive(format!("Bearer {}", secret.expose_secret()))?),
            Self::Basic => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(secret.expose_secret());
                (authorization, sensitive(format!("Basic {encoded}"))?)
            }
            Self::Header { name, prefix } => {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| HttpError::InvalidRequest(format!("invalid API-key header name `{name}`")))?;
                (name, sensitive(format!("{prefix}{}", secret.expose_secret()))?)
            }
            Self::Query { .. } => return Ok(None),
        }))
    }

    /// For a key carried in the query: `url` with it added. The URL is only ever logged or
    /// reported without its query (see `classify`).
    fn add_to_query(&self, url: &Url, secret: &SecretString) -> Url {
        let mut url = url.clone();
        if let Self::Query { name } = self {
            url.query_pairs_mut().append_pair(name, secret.expose_secret());
        }
        url
    }
}

/// Builds the HTTP client for one plugin: its resolver enforces the policy after DNS, redirects
/// are off, and proxies from the environment are ignored (a proxy would resolve names itself,
/// behind our back).
pub fn build_client(policy: Arc<EgressPolicy>) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PolicyResolver::new(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("crmhost/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Per-call HTTP state.
pub struct PluginHttp {
    plugin: Arc<str>,
    connection: String,
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    credentials: Option<Arc<dyn CredentialSource>>,
    placement: Arc<CredentialPlacement>,
    pacer: Option<Arc<AccountPacer>>,
    request_bytes: u64,
    response_bytes: u64,
    timeout: Duration,
    requests_left: u32,
    stats: Arc<crate::plugins::stats::CallStats>,
}

impl PluginHttp {
    /// HTTP state for one call.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plugin: Arc<str>,
        connection: String,
        policy: Arc<EgressPolicy>,
        client: reqwest::Client,
        credentials: Option<Arc<dyn CredentialSource>>,
        placement: Arc<CredentialPlacement>,
        pacer: Option<Arc<AccountPacer>>,
        limits: &PluginLimits,
        stats: Arc<crate::plugins::stats::CallStats>,
    ) -> Self {
        Self {
            plugin,
            connection,
            policy,
            client,
            credentials,
            placement,
            pacer,
            request_bytes: limits.http_request_bytes,
            response_bytes: limits.http_response_bytes,
            timeout: Duration::from_millis(limits.http_timeout_ms),
            requests_left: limits.http_requests_per_call,
            stats,
        }
    }

    /// Checks and sends one request.
    pub async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        if self.requests_left == 0 {
            return Err(HttpError::Denied("this call has sent the most requests one call may send".to_owned()));
        }
        self.requests_left -= 1;

        let url = Url::parse(&request.url).map_err(|e| HttpError::InvalidRequest(format!("invalid URL: {e}")))?;
        if let Err(reason) = self.policy.check_url(&url) {
            tracing::warn!(plugin = %self.plugin, connection = %self.connection, %reason, "egress denied");
            return Err(HttpError::Denied(reason));
        }
        if let Some((name, _)) = request.headers.iter().find(|(n, _)| header_forbidden(n)) {
            return Err(HttpError::Denied(format!("header `{name}` may not be set by a plugin")));
        }
        if let Some(what) = self.placement.reserved_in(&url, &request.headers) {
            return Err(HttpError::Denied(format!("{what} carries the connection's API key: the host sets it")));
        }
        let body = request.body.unwrap_or_default();
        if body.len() as u64 > self.request_bytes {
            return Err(HttpError::TooLarge(format!(
                "request body of {} bytes is over the {}-byte limit",
                body.len(),
                self.request_bytes
            )));
        }
        let timeout =
            request.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms)).min(self.timeout)).unwrap_or(self.timeout);

        let span = tracing::info_span!(
            "plugin.http",
            plugin = %self.plugin,
            connection = %self.connection,
            method = ?request.method,
            host = url.host_str().unwrap_or_default(),
            path = url.path(),
            status = tracing::field::Empty,
        );
        async {
            let token = self.token(false).await?;
            let mut response = self.paced_send(&request.method, &url, &request.headers, &body, timeout, token).await?;
            if response.status().as_u16() == 401 && self.credentials.is_some() {
                // One refresh per request; a second 401 goes back to the plugin.
                if let Some(fresh) = self.token(true).await? {
                    response =
                        self.paced_send(&request.method, &url, &request.headers, &body, timeout, Some(fresh)).await?;
                }
            }
            tracing::Span::current().record("status", response.status().as_u16());
            self.read_response(response).await
        }
        .instrument(span)
        .await
    }

    async fn token(&self, refresh: bool) -> Result<Option<SecretString>, HttpError> {
        let Some(source) = &self.credentials else { return Ok(None) };
        let token = if refresh { source.refresh_after_unauthorized().await } else { source.access_token().await };
        token.map_err(|e| HttpError::NoCredentials(e.to_string()))
    }

    /// Waits for the account's pacer, sends, and tells the pacer what the CRM said about limits.
    async fn paced_send(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
        token: Option<SecretString>,
    ) -> Result<reqwest::Response, HttpError> {
        if let Some(pacer) = &self.pacer {
            let waiting = std::time::Instant::now();
            pacer.acquire(url.path()).await;
            self.stats.record_pacer_wait(waiting.elapsed());
        }
        let sending = std::time::Instant::now();
        let sent = self.send_once(method, url, headers, body, timeout, token).await;
        self.stats.record_outbound(sent.as_ref().ok().map(|r| r.status().as_u16()), sending.elapsed());
        let response = sent?;
        if let Some(pacer) = &self.pacer {
            let seen: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(n, _)| pacer.reads_header(n.as_str()))
                .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
                .collect();
            pacer.observe(response.status().as_u16(), &seen);
        }
        Ok(response)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
        token: Option<SecretString>,
    ) -> Result<reqwest::Response, HttpError> {
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let url = match &token {
            Some(token) => self.placement.add_to_query(url, token),
            None => url.clone(),
        };
        let mut builder = self.client.request(method, url).timeout(timeout);
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("invalid header name `{name}`")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("invalid value for header `{name}`")))?;
            builder = builder.header(name, value);
        }
        if let Some(token) = &token
            && let Some((name, value)) = self.placement.header(token)?
        {
            builder = builder.header(name, value);
        }
        if !body.is_empty() {
            builder = builder.body(body.to_vec());
        }
        builder.send().await.map_err(classify)
    }

    async fn read_response(&self, mut response: reqwest::Response) -> Result<Response, HttpError> {
        let too_large = |n: u64| {
            HttpError::TooLarge(format!("response body of {n}+ bytes is over the {}-byte limit", self.response_bytes))
        };
        if let Some(len) = response.content_length()
            && len > self.response_bytes
        {
            return Err(too_large(len));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > self.response_bytes {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }
}

/// Maps a client error to what the plugin sees; a resolver denial stays a denial.
fn classify(err: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<ResolveDenied>() {
            return HttpError::Denied(denied.0.clone());
        }
        source = e.source();
    }
    if err.is_timeout() {
        return HttpError::Timeout;
    }
    // Without the URL: it is the plugin's own, and a query string could carry personal data.
    HttpError::Connection(err.without_url().to_string())
}

impl http::Host for CallState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        let started = std::time::Instant::now();
        let result = self.http.send(request).await;
        self.http.stats.record_http(started.elapsed());
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(placement: &CredentialPlacement, secret: &str) -> Option<(String, String)> {
        let (name, value) = placement.header(&SecretString::from(secret.to_owned())).unwrap()?;
        assert!(value.is_sensitive(), "credential headers are marked sensitive");
        Some((name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
    }

    #[test]
    fn each_scheme_puts_the_secret_where_the_plugin_declared() {
        let at =
            |name: &str, prefix: &str| CredentialPlacement::Header { name: name.to_owned(), prefix: prefix.to_owned() };
        assert_eq!(header_of(&CredentialPlacement::Bearer, "t0k"), Some(("authorization".into(), "Bearer t0k".into())));
        assert_eq!(header_of(&at("x-api-token", ""), "k3y"), Some(("x-api-token".into(), "k3y".into())));
        assert_eq!(
            header_of(&at("authorization", "Token "), "k3y"),
            Some(("authorization".into(), "Token k3y".into()))
        );
        // RFC 7617: base64 of `user:password`.
        assert_eq!(
            header_of(&CredentialPlacement::Basic, "Aladdin:open sesame"),
            Some(("authorization".into(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".into()))
        );
        let query = CredentialPlacement::Query { name: "api_token".to_owned() };
        assert_eq!(header_of(&query, "k3y"), None);
        let url = Url::parse("https://api.example.com/v1/persons?limit=2").unwrap();
        let placed = query.add_to_query(&url, &SecretString::from("a&b=c".to_owned()));
        assert_eq!(placed.as_str(), "https://api.example.com/v1/persons?limit=2&api_token=a%26b%3Dc");
        assert_eq!(
            at("x", "").add_to_query(&url, &SecretString::from("k".to_owned())),
            url,
            "only a query key changes the URL"
        );
        // A secret that cannot be a header value is refused, not sent or echoed.
        let refused = CredentialPlacement::Bearer.header(&SecretString::from("bad\nvalue".to_owned())).unwrap_err();
        assert!(matches!(refused, HttpError::NoCredentials(m) if !m.contains("bad")));
    }

    #[test]
    fn a_plugin_may_not_set_what_carries_its_key() {
        let header = CredentialPlacement::Header { name: "x-api-token".to_owned(), prefix: String::new() };
        let url = Url::parse("https://api.example.com/v1/persons").unwrap();
        let set = vec![("X-Api-Token".to_owned(), "guess".to_owned())];
        assert_eq!(header.reserved_in(&url, &set).as_deref(), Some("header `X-Api-Token`"));
        assert_eq!(header.reserved_in(&url, &[]), None);
        let query = CredentialPlacement::Query { name: "api_token".to_owned() };
        let guessed = Url::parse("https://api.example.com/v1/persons?api_token=x").unwrap();
        assert_eq!(query.reserved_in(&guessed, &[]).as_deref(), Some("query parameter `api_token`"));
        assert_eq!(CredentialPlacement::Bearer.reserved_in(&guessed, &set), None);
    }

    #[test]
    fn credential_and_hop_by_hop_headers_are_forbidden_in_any_case() {
        for name in ["Authorization", "HOST", "Proxy-Authorization", "proxy-anything", "Cookie", "Transfer-Encoding"] {
            assert!(header_forbidden(name), "{name}");
        }
        for name in ["Content-Type", "Accept", "X-PrettyPrint", "Sforce-Query-Options"] {
            assert!(!header_forbidden(name), "{name}");
        }
    }
}
