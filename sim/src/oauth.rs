//! OAuth state shared by both emulators: registered clients, authorization codes (with PKCE
//! challenges), access tokens and refresh-token chains. Each CRM keeps its own [`OAuthStore`];
//! the wire formats differ and live in each CRM's module.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
    /// Allowed redirect URIs; empty means any loopback URI (`127.0.0.1`, `localhost`, `[::1]`).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// The client every emulator registers: `crm-sim-client` / `crm-sim-secret`, any loopback redirect.
    pub fn default_client() -> Self {
        Self { id: "crm-sim-client".to_owned(), secret: "crm-sim-secret".to_owned(), redirect_uris: Vec::new() }
    }

    /// Whether `uri` may receive codes for this client.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        if !self.redirect_uris.is_empty() {
            return self.redirect_uris.iter().any(|u| u == uri);
        }
        url::Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
    }
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was issued for (the exchange must repeat it).
    pub redirect_uri: String,
    /// The PKCE challenge (S256), when one was sent.
    pub challenge: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl AuthCode {
    /// The code an authorize request earns: its client, redirect URI and PKCE challenge (from the
    /// query), the scopes granted, valid until `expires_at`.
    pub fn for_request(
        client_id: String,
        redirect_uri: &str,
        query: &BTreeMap<String, String>,
        scopes: Vec<String>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            client_id,
            redirect_uri: redirect_uri.to_owned(),
            challenge: query.get("code_challenge").cloned(),
            scopes,
            expires_at,
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone, Serialize)]
pub struct AccessToken {
    /// The client.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Revoked (directly or through its refresh token).
    pub revoked: bool,
    /// The refresh-token chain it came from.
    pub chain: Option<u64>,
}

/// An issued refresh token.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshToken {
    /// The client.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Chain id: every token rotated from the same grant shares it.
    pub chain: u64,
    /// Rotated out (a newer token replaced it); reusing it revokes the chain.
    pub rotated: bool,
    /// Revoked.
    pub revoked: bool,
}

/// Why a token is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued.
    Unknown,
    /// Revoked.
    Revoked,
    /// Expired this many seconds ago.
    Expired(i64),
}

/// One CRM's OAuth state.
#[derive(Debug, Default)]
pub struct OAuthStore {
    /// Registered clients by id.
    pub clients: BTreeMap<String, OAuthClient>,
    /// Pending codes.
    pub codes: BTreeMap<String, AuthCode>,
    /// Access tokens.
    pub access: BTreeMap<String, AccessToken>,
    /// Refresh tokens.
    pub refresh: BTreeMap<String, RefreshToken>,
    next_chain: u64,
    /// Access tokens issued so far.
    pub access_issued: u64,
    /// Refresh tokens issued so far.
    pub refresh_issued: u64,
}

impl OAuthStore {
    /// A store with `clients` registered.
    pub fn new(clients: &[OAuthClient]) -> Self {
        Self { clients: clients.iter().map(|c| (c.id.clone(), c.clone())).collect(), ..Self::default() }
    }

    /// A new chain id.
    pub fn new_chain(&mut self) -> u64 {
        self.next_chain += 1;
        self.next_chain
    }

    /// Records a refresh token starting a new chain (a fresh grant); returns the chain.
    pub fn issue_refresh(&mut self, token: &str, client_id: &str, scopes: &[String]) -> u64 {
        let chain = self.new_chain();
        let record = RefreshToken {
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
            chain,
            rotated: false,
            revoked: false,
        };
        self.refresh.insert(token.to_owned(), record);
        self.refresh_issued += 1;
        chain
    }

    /// Checks an access token.
    pub fn check_access(&self, token: &str, now: DateTime<Utc>) -> Result<&AccessToken, TokenProblem> {
        let record = self.access.get(token).ok_or(TokenProblem::Unknown)?;
        if record.revoked {
            return Err(TokenProblem::Revoked);
        }
        if record.expires_at <= now {
            return Err(TokenProblem::Expired((now - record.expires_at).num_seconds().max(1)));
        }
        Ok(record)
    }

    /// Records a newly issued access token of `chain`, valid for `ttl_secs` from `now`.
    pub fn issue_access(
        &mut self,
        token: &str,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
        ttl_secs: u64,
        chain: u64,
    ) {
        let ttl = chrono::Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000));
        self.access.insert(
            token.to_owned(),
            AccessToken {
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                issued_at: now,
                expires_at: now + ttl,
                revoked: false,
                chain: Some(chain),
            },
        );
        self.access_issued += 1;
    }

    /// Revokes every token of a chain.
    pub fn revoke_chain(&mut self, chain: u64) {
        for token in self.refresh.values_mut().filter(|t| t.chain == chain) {
            token.revoked = true;
        }
        for token in self.access.values_mut().filter(|t| t.chain == Some(chain)) {
            token.revoked = true;
        }
    }

    /// Revokes a token of either kind (a refresh token takes its chain's access tokens with it).
    /// Returns whether it existed.
    pub fn revoke(&mut self, token: &str) -> bool {
        if let Some(chain) = self.refresh.get(token).map(|t| t.chain) {
            self.revoke_chain(chain);
            return true;
        }
        if let Some(access) = self.access.get_mut(token) {
            access.revoked = true;
            return true;
        }
        false
    }
}

/// Checks a PKCE verifier against an S256 challenge (`base64url(sha256(verifier))`, no padding).
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let digest = Sha256::digest(verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge
}

/// Client credentials from the form or from HTTP Basic auth.
pub fn client_credentials(
    form: &BTreeMap<String, String>,
    authorization: Option<&str>,
) -> (Option<String>, Option<String>) {
    if let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic "))
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
        && let Ok(text) = String::from_utf8(decoded)
        && let Some((id, secret)) = text.split_once(':')
    {
        return (Some(id.to_owned()), Some(secret.to_owned()));
    }
    (form.get("client_id").cloned(), form.get("client_secret").cloned())
}

/// `uri` with the pairs appended as query parameters.
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// A `302 Found` redirect, as both CRMs' authorize endpoints answer (axum's helpers use 303/307).
pub fn found(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, location.to_owned())]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_accepts_the_rfc_7636_example() {
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "wrong"));
    }

    #[test]
    fn the_default_client_accepts_loopback_redirects_only() {
        let client = OAuthClient::default_client();
        assert!(client.allows_redirect("http://127.0.0.1:8787/cb"));
        assert!(client.allows_redirect("http://localhost/cb"));
        assert!(!client.allows_redirect("https://evil.example/cb"));
    }

    #[test]
    fn revoking_a_refresh_token_revokes_its_access_tokens() {
        let now = Utc::now();
        let mut store = OAuthStore::default();
        let chain = store.new_chain();
        store.refresh.insert(
            "r".to_owned(),
            RefreshToken { client_id: "c".to_owned(), scopes: vec![], chain, rotated: false, revoked: false },
        );
        store.access.insert(
            "a".to_owned(),
            AccessToken {
                client_id: "c".to_owned(),
                scopes: vec![],
                issued_at: now,
                expires_at: now + chrono::Duration::hours(1),
                revoked: false,
                chain: Some(chain),
            },
        );
        assert!(store.check_access("a", now).is_ok());
        assert!(store.revoke("r"));
        assert_eq!(store.check_access("a", now).err(), Some(TokenProblem::Revoked));
    }
}
