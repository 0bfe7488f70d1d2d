//! The OAuth 2.0 client side of one plugin: the authorize URL, the code exchange, refresh and
//! revocation, built from the plugin's description with the operator's client id and secret.
//!
//! The `oauth2` crate builds the authorize URL and runs the token requests. Revocation (RFC 7009)
//! is a plain form POST here, because the crate refuses non-HTTPS revocation endpoints and the
//! sandbox's emulators are plain HTTP on loopback. Every request goes through the plugin's own
//! HTTP client, so the egress policy (allowed hosts, no private networks unless allowed) covers the
//! host's OAuth traffic too.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, StandardTokenResponse,
    TokenResponse as _, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::tokens::TokenSet;
use crate::plugins::LoadedPlugin;
use crate::plugins::description::OAuth2Description;

/// How long a token-endpoint request may take.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Fields of a token response beyond the standard ones, kept so the facts a plugin asked for
/// (`instance_url`, `id`, `hub_id`) can be picked out.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ExtraFields {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ExtraFields {
    // Keys only: an `id_token` or `signature` has no business in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.fields.keys()).finish()
    }
}

impl oauth2::ExtraTokenFields for ExtraFields {}

type TokenReply = StandardTokenResponse<ExtraFields, BasicTokenType>;

type Client<HasAuth, HasToken> = oauth2::Client<
    BasicErrorResponse,
    TokenReply,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    HasAuth,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasToken,
>;

/// Why an OAuth step failed. Messages are safe to show: no token, secret or raw body in them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The operator has not configured what the flow needs (client id, secret, public URL).
    #[error("{0}")]
    NotConfigured(String),
    /// The plugin does not use OAuth.
    #[error("the `{0}` plugin does not use OAuth")]
    NotOAuth(String),
    /// The CRM refused the grant: the code or refresh token is invalid, expired or revoked.
    #[error("the CRM rejected the grant ({0}); the user must connect again")]
    InvalidGrant(String),
    /// The CRM refused the request for another reason (client id or secret, redirect URI, scope).
    #[error("the CRM refused the token request: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// The OAuth error code.
        code: String,
        /// The CRM's description, if any.
        description: Option<String>,
    },
    /// The CRM could not be reached or answered something unusable; worth retrying later.
    #[error("the CRM's token endpoint failed: {0}")]
    Transient(String),
}

impl OAuthError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// What a successful code exchange or refresh yields.
#[derive(Debug)]
pub struct TokenGrant {
    /// The tokens (access, refresh).
    pub tokens: TokenSet,
    /// When the access token expires, if the CRM said.
    pub expires_at: Option<DateTime<Utc>>,
    /// The non-secret facts the plugin asked for, as strings.
    pub facts: BTreeMap<String, String>,
    /// The granted scopes, if the CRM listed them.
    pub scopes: Vec<String>,
}

impl TokenGrant {
    /// The facts a connection made with this grant records: the plugin's token-response facts
    /// and the granted scopes (space-separated, so an adapter can report them).
    pub fn connection_facts(&self) -> BTreeMap<String, String> {
        let mut facts = self.facts.clone();
        if !self.scopes.is_empty() {
            facts.entry("scopes".to_owned()).or_insert_with(|| self.scopes.join(" "));
        }
        facts
    }
}

/// The OAuth application of one plugin: endpoints, client credentials and redirect URI.
pub struct OAuthApp {
    description: OAuth2Description,
    client_id: String,
    client_secret: Option<SecretString>,
    redirect_uri: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("token_url", &self.description.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<configured>"))
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// The callback URL of a plugin under a public base URL.
pub fn redirect_uri(public_url: &Url, slug: &str) -> String {
    format!("{}/api/v1/integrations/callback/{slug}", public_url.as_str().trim_end_matches('/'))
}

impl OAuthApp {
    /// The OAuth application of `plugin`, or why it cannot run a flow.
    pub fn for_plugin(plugin: &LoadedPlugin, public_url: &Url) -> Result<Self, OAuthError> {
        let slug = plugin.slug().as_str();
        let description = plugin.oauth().ok_or_else(|| OAuthError::NotOAuth(slug.to_owned()))?;
        let env = plugin.slug().env_name();
        let client_id = plugin.oauth_client_id().ok_or_else(|| {
            OAuthError::NotConfigured(format!(
                "no OAuth client id for `{slug}`: set CRMHOST_{env}_CLIENT_ID or [plugins.{slug}.oauth] client_id"
            ))
        })?;
        let client_secret = plugin.secret("client_secret");
        if client_secret.is_none() {
            return Err(OAuthError::NotConfigured(format!(
                "no OAuth client secret for `{slug}`: set CRMHOST_{env}_CLIENT_SECRET or [plugins.{slug}.secrets] client_secret"
            )));
        }
        for url in std::iter::once(&description.token_url).chain(description.revoke_url.iter()) {
            let parsed = Url::parse(url).map_err(|e| OAuthError::NotConfigured(format!("bad OAuth URL {url}: {e}")))?;
            plugin.egress().check_url(&parsed).map_err(|e| {
                OAuthError::NotConfigured(format!(
                    "the OAuth endpoint {url} is outside the plugin's egress policy: {e}"
                ))
            })?;
        }
        Ok(Self {
            description,
            client_id,
            client_secret,
            redirect_uri: redirect_uri(public_url, slug),
            http: plugin.http_client().clone(),
        })
    }

    /// The redirect URI this application sends.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether the flow uses PKCE.
    pub fn uses_pkce(&self) -> bool {
        self.description.pkce
    }

    fn client_id(&self) -> ClientId {
        ClientId::new(self.client_id.clone())
    }

    fn client_secret(&self) -> Option<ClientSecret> {
        self.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned()))
    }

    fn token_client(&self) -> Result<Client<EndpointNotSet, EndpointSet>, OAuthError> {
        let token_url = TokenUrl::new(self.description.token_url.clone())
            .map_err(|e| OAuthError::NotConfigured(format!("bad token URL: {e}")))?;
        let redirect =
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| OAuthError::NotConfigured(e.to_string()))?;
        let mut client = Client::new(self.client_id())
            .set_token_uri(token_url)
            .set_redirect_uri(redirect)
            // Both CRMs accept credentials in the form body; HubSpot's v3 endpoint accepts nothing else.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = self.client_secret() {
            client = client.set_client_secret(secret);
        }
        Ok(client)
    }

    /// The URL to send the user to, with `state` and (where supported) a PKCE challenge.
    /// Returns the URL and the PKCE verifier to keep for the exchange.
    pub fn authorize_url(&self, state: &SecretString) -> Result<(Url, Option<SecretString>), OAuthError> {
        let auth_url = AuthUrl::new(self.description.authorize_url.clone())
            .map_err(|e| OAuthError::NotConfigured(format!("bad authorize URL: {e}")))?;
        let redirect =
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| OAuthError::NotConfigured(e.to_string()))?;
        let client: Client<EndpointSet, EndpointNotSet> =
            Client::new(self.client_id()).set_auth_uri(auth_url).set_redirect_uri(redirect);
        let state_value = state.expose_secret().to_owned();
        let mut request = client.authorize_url(move || CsrfToken::new(state_value));
        // Scopes are joined here rather than by the crate: the separator is the plugin's to choose.
        let separator = &self.description.scope_separator;
        if !self.description.scopes.is_empty() {
            request = request.add_extra_param("scope", self.description.scopes.join(separator));
        }
        if !self.description.optional_scopes.is_empty() {
            request = request.add_extra_param("optional_scope", self.description.optional_scopes.join(separator));
        }
        for (name, value) in &self.description.extra_authorize_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let verifier = if self.description.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            Some(SecretString::from(verifier.secret().to_owned()))
        } else {
            None
        };
        let (url, _) = request.url();
        Ok((url, verifier))
    }

    /// Exchanges an authorization code.
    #[tracing::instrument(name = "oauth.exchange_code", skip_all, fields(token_url = %self.description.token_url))]
    pub async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: Option<&SecretString>,
    ) -> Result<TokenGrant, OAuthError> {
        let client = self.token_client()?;
        let mut request = client.exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()));
        if let Some(verifier) = verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
        }
        let reply = tokio::time::timeout(TOKEN_REQUEST_TIMEOUT, request.request_async(&self.http))
            .await
            .map_err(|_| OAuthError::Transient("timed out".to_owned()))?
            .map_err(|e| code_refusal(classify(e)))?;
        Ok(self.grant(reply, None))
    }

    /// Trades a refresh token for a new access token (and, where the CRM rotates, a new refresh
    /// token; otherwise the old one is kept).
    #[tracing::instrument(name = "oauth.refresh", skip_all, fields(token_url = %self.description.token_url))]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, OAuthError> {
        let client = self.token_client()?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let reply = tokio::time::timeout(
            TOKEN_REQUEST_TIMEOUT,
            client.exchange_refresh_token(&token).request_async(&self.http),
        )
        .await
        .map_err(|_| OAuthError::Transient("timed out".to_owned()))?
        .map_err(classify)?;
        Ok(self.grant(reply, Some(refresh_token)))
    }

    fn grant(&self, reply: TokenReply, previous_refresh: Option<&SecretString>) -> TokenGrant {
        let refresh_token = reply
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned()))
            .or_else(|| previous_refresh.cloned());
        let expires_at = reply.expires_in().and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| Utc::now() + d);
        let extra = &reply.extra_fields().fields;
        let facts = self
            .description
            .token_response_facts
            .iter()
            .filter_map(|name| {
                let value = match extra.get(name)? {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((name.clone(), value))
            })
            .collect();
        let mut scopes: Vec<String> =
            reply.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        if let Some(serde_json::Value::Array(listed)) = extra.get("scopes") {
            scopes.extend(listed.iter().filter_map(|s| s.as_str().map(str::to_owned)));
        }
        TokenGrant {
            tokens: TokenSet::new(SecretString::from(reply.access_token().secret().to_owned()), refresh_token),
            expires_at,
            facts,
            scopes,
        }
    }

    /// Revokes a token at the CRM (RFC 7009). `Ok(false)` when the plugin has no revocation endpoint.
    #[tracing::instrument(name = "oauth.revoke", skip_all)]
    pub async fn revoke(&self, token: &SecretString, hint: &str) -> Result<bool, OAuthError> {
        let Some(url) = &self.description.revoke_url else { return Ok(false) };
        let mut form = vec![("token", token.expose_secret().to_owned()), ("token_type_hint", hint.to_owned())];
        form.push(("client_id", self.client_id.clone()));
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret().to_owned()));
        }
        let response = self
            .http
            .post(url)
            .form(&form)
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| OAuthError::Transient(describe_transport(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        // Error bodies are OAuth error objects (JSON or urlencoded); keep only the code.
        let body = response.bytes().await.unwrap_or_default();
        let code = error_code(&body).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        if status.is_server_error() {
            Err(OAuthError::Transient(code))
        } else {
            Err(OAuthError::Rejected { code, description: None })
        }
    }
}

/// The OAuth `error` code (or HubSpot's `status`) of an error body, JSON or urlencoded.
fn error_code(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        return value
            .get("error")
            .or_else(|| value.get("status"))
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(64).collect());
    }
    form_urlencoded_error(body)
}

fn form_urlencoded_error(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == "error").map(|(_, v)| v.chars().take(64).collect())
}

fn describe_transport(err: &reqwest::Error) -> String {
    // reqwest's Display can include the URL; token endpoints carry no secret in theirs, but the
    // kind is all a caller needs.
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// A code exchange refused over the code verifier is a grant the user cannot use, like an expired
/// code: Salesforce says `invalid_request` ("invalid code verifier") where HubSpot says
/// `invalid_grant`, and both mean "start the connect again", not a misconfigured client.
fn code_refusal(err: OAuthError) -> OAuthError {
    match err {
        OAuthError::Rejected { code, description }
            if code == "invalid_request" && description.as_deref().is_some_and(|d| d.contains("verifier")) =>
        {
            OAuthError::InvalidGrant(description.unwrap_or(code))
        }
        other => other,
    }
}

fn classify(err: RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_owned();
            let description = response.error_description().map(|d| d.chars().take(200).collect());
            if *response.error() == BasicErrorResponseType::InvalidGrant {
                OAuthError::InvalidGrant(description.unwrap_or(code))
            } else {
                OAuthError::Rejected { code, description }
            }
        }
        // HubSpot's older error bodies have `status` rather than `error`, which the crate cannot
        // parse; a refresh-token refusal there is still an invalid grant.
        RequestTokenError::Parse(_, body) => match error_code(&body).as_deref() {
            Some(code @ ("BAD_REFRESH_TOKEN" | "BAD_AUTH_CODE" | "invalid_grant")) => {
                OAuthError::InvalidGrant(code.to_owned())
            }
            Some(code @ ("BAD_CLIENT_ID" | "BAD_REDIRECT_URI" | "BAD_CLIENT_SECRET")) => {
                OAuthError::Rejected { code: code.to_owned(), description: None }
            }
            _ => OAuthError::Transient("unreadable token response".to_owned()),
        },
        RequestTokenError::Request(oauth2::HttpClientError::Reqwest(e)) => {
            OAuthError::Transient(describe_transport(&e))
        }
        RequestTokenError::Request(_) => OAuthError::Transient("request failed".to_owned()),
        RequestTokenError::Other(detail) => OAuthError::Transient(detail.chars().take(200).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_json_hubspot_and_urlencoded_bodies() {
        assert_eq!(
            error_code(br#"{"error":"invalid_grant","error_description":"x"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            error_code(br#"{"status":"BAD_REFRESH_TOKEN","message":"m"}"#).as_deref(),
            Some("BAD_REFRESH_TOKEN")
        );
        assert_eq!(error_code(b"error=invalid_token&error_description=x").as_deref(), Some("invalid_token"));
        assert_eq!(error_code(b"<html>oops</html>"), None);
    }

    #[test]
    fn extra_fields_debug_shows_keys_not_values() {
        let fields: ExtraFields =
            serde_json::from_str(r#"{"id_token":"eyJsecret","instance_url":"https://x"}"#).unwrap();
        let shown = format!("{fields:?}");
        assert!(shown.contains("id_token") && !shown.contains("eyJsecret"), "{shown}");
    }
}
