//! API authentication: bearer JWTs signed by the platform (HS256 with `CRMHOST_JWT_SECRET`, or
//! Ed25519 / RS256 with a configured public key), carrying the caller's user, workspace and role.
//!
//! Roles are ordered `viewer < member < admin < owner`; a route names the least role it needs.
//! A token is valid for one workspace: using it on another is 403, however high its role.

mod caller;
mod duration;
pub mod webhook_secret;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use caller::Caller;
pub use duration::parse_duration;

/// A caller's role in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only.
    Viewer,
    /// Push, pull, view history, resolve conflicts.
    Member,
    /// Connect, disconnect, mappings, settings.
    Admin,
    /// Everything an admin can, as the workspace's owner.
    Owner,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

/// The claims crmhost reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The workspace id.
    pub workspace: String,
    /// The role.
    pub role: Role,
    /// Expiry, epoch seconds.
    pub exp: i64,
    /// Issued at, epoch seconds.
    #[serde(default)]
    pub iat: i64,
}

/// Why a token was refused (the message is safe to return).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("send `Authorization: Bearer <token>`")]
    Missing,
    /// Expired.
    #[error("the token has expired")]
    Expired,
    /// Its `nbf` (not before) is still in the future.
    #[error("the token is not valid yet (its `nbf` is in the future)")]
    NotYetValid,
    /// Bad signature, malformed, or wrong algorithm.
    #[error("the token is invalid")]
    Invalid,
}

/// Verifies tokens with every configured key.
pub struct JwtVerifier {
    keys: Vec<(DecodingKey, Algorithm)>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<Algorithm> = self.keys.iter().map(|(_, a)| *a).collect();
        f.debug_struct("JwtVerifier").field("algorithms", &algorithms).finish()
    }
}

impl JwtVerifier {
    /// A verifier for an HS256 secret and/or a PEM public key (Ed25519 or RSA). `None` if neither is set.
    pub fn new(secret: Option<&SecretString>, public_key_pem: Option<&[u8]>) -> Result<Option<Self>, String> {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            keys.push((DecodingKey::from_secret(secret.expose_secret().as_bytes()), Algorithm::HS256));
        }
        if let Some(pem) = public_key_pem {
            let key = DecodingKey::from_ed_pem(pem)
                .map(|k| (k, Algorithm::EdDSA))
                .or_else(|_| DecodingKey::from_rsa_pem(pem).map(|k| (k, Algorithm::RS256)))
                .map_err(|_| "CRMHOST_JWT_PUBLIC_KEY: not an Ed25519 or RSA public key in PEM".to_owned())?;
            keys.push(key);
        }
        Ok((!keys.is_empty()).then_some(Self { keys }))
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut refusal = AuthError::Invalid;
        for (key, algorithm) in &self.keys {
            let mut validation = Validation::new(*algorithm);
            validation.leeway = 30;
            // `nbf` is optional, but when a token carries one it holds (with the same leeway).
            validation.validate_nbf = true;
            validation.set_required_spec_claims(&["exp", "sub"]);
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => refusal = AuthError::Expired,
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => refusal = AuthError::NotYetValid,
                    _ => {}
                },
            }
        }
        Err(refusal)
    }
}

/// Signs an HS256 token (`crmhost token`, demos, tests).
pub fn sign_hs256(secret: &SecretString, claims: &Claims) -> Result<String, String> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|e| format!("could not sign the token: {e}"))
}

/// `crmhost token`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The workspace the token is for.
    #[arg(long)]
    pub workspace: String,
    /// The caller's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The user id (`sub`).
    #[arg(long, default_value = "operator")]
    pub user: String,
    /// How long the token lasts: 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The signing secret.
    #[arg(long, env = "CRMHOST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

/// `crmhost token`: a workspace bearer token signed with the HS256 secret, or what is wrong with
/// the arguments.
pub fn mint_token(args: TokenArgs) -> Result<String, String> {
    let workspace = crate::domain::WorkspaceId::parse(&args.workspace).map_err(|e| format!("--workspace: {e}"))?;
    let ttl = parse_duration(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    if args.jwt_secret.len() < 32 {
        return Err("CRMHOST_JWT_SECRET: use at least 32 characters".to_owned());
    }
    workspace_token(&SecretString::from(args.jwt_secret), &workspace, args.role, &args.user, ttl)
}

/// A workspace token for `user` with `role`, valid for `ttl`, signed HS256 with `secret`.
pub fn workspace_token(
    secret: &SecretString,
    workspace: &crate::domain::WorkspaceId,
    role: Role,
    user: &str,
    ttl: std::time::Duration,
) -> Result<String, String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user.to_owned(),
        workspace: workspace.to_string(),
        role,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        iat: now,
    };
    sign_hs256(secret, &claims)
}

/// `crmhost console-link`'s arguments: a token's, and where browsers reach crmhost.
#[derive(Debug, clap::Args)]
pub struct ConsoleLinkArgs {
    /// The token's workspace, role, user, lifetime and signing secret.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Where browsers reach crmhost.
    #[arg(long, env = "CRMHOST_PUBLIC_URL", default_value = "http://127.0.0.1:8787")]
    pub public_url: String,
}

/// `crmhost console-link`: a sign-in link to the console, or what is wrong with the arguments.
pub fn console_link(args: ConsoleLinkArgs) -> Result<String, String> {
    let public_url = url::Url::parse(&args.public_url).map_err(|e| format!("--public-url: {e}"))?;
    if !matches!(public_url.scheme(), "http" | "https") {
        return Err("--public-url: use an http or https URL".to_owned());
    }
    let token = mint_token(args.token)?;
    Ok(crate::console::link(&public_url, &token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("a-test-secret-that-is-long-enough-000")
    }

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims { sub: "u1".to_owned(), workspace: "w1".to_owned(), role: Role::Admin, exp: now + exp_offset, iat: now }
    }

    #[test]
    fn a_signed_token_verifies_and_roles_are_ordered() {
        let verifier = JwtVerifier::new(Some(&secret()), None).unwrap().unwrap();
        let token = sign_hs256(&secret(), &claims(3600)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().role, Role::Admin);
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin && Role::Admin < Role::Owner);
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused() {
        let verifier = JwtVerifier::new(Some(&secret()), None).unwrap().unwrap();
        assert_eq!(verifier.verify(&sign_hs256(&secret(), &claims(-3600)).unwrap()), Err(AuthError::Expired));
        let forged = sign_hs256(&SecretString::from("another-secret-another-secret-0000"), &claims(3600)).unwrap();
        assert_eq!(verifier.verify(&forged), Err(AuthError::Invalid));
        assert_eq!(verifier.verify("not.a.jwt"), Err(AuthError::Invalid));
    }

    #[test]
    fn a_token_used_before_its_nbf_is_refused_and_one_after_it_accepted() {
        #[derive(serde::Serialize)]
        struct WithNbf {
            #[serde(flatten)]
            claims: Claims,
            nbf: i64,
        }
        let verifier = JwtVerifier::new(Some(&secret()), None).unwrap().unwrap();
        let sign = |nbf_offset: i64| {
            let claims = claims(3600);
            let nbf = claims.iat + nbf_offset;
            let key = EncodingKey::from_secret(secret().expose_secret().as_bytes());
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &WithNbf { claims, nbf }, &key).unwrap()
        };
        assert_eq!(verifier.verify(&sign(600)), Err(AuthError::NotYetValid));
        assert!(verifier.verify(&sign(-60)).is_ok());
        assert!(verifier.verify(&sign(10)).is_ok(), "within the 30 s leeway");
    }

    #[test]
    fn no_key_means_no_verifier_and_a_bad_public_key_is_a_clear_error() {
        assert!(JwtVerifier::new(None, None).unwrap().is_none());
        let err =
            JwtVerifier::new(None, Some(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")).unwrap_err();
        assert!(err.contains("CRMHOST_JWT_PUBLIC_KEY"), "{err}");
    }
}
