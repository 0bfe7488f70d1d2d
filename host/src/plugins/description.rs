//! [`PluginDescription`]: what `describe()` returned, validated and converted into host types.
//!
//! The rest of the host never sees the generated WIT record: it sees this, which is known to be
//! well-formed (slug, URLs, host patterns, entity names) and serialises for the API catalogue.

use std::collections::BTreeSet;

use serde::Serialize;

use super::bindings::adapter;
use super::branding::{Category, check_svg};
use super::egress::HostPattern;
use crate::domain::PluginSlug;

/// A validated plugin description.
#[derive(Debug, Clone, Serialize)]
pub struct PluginDescription {
    /// The registry key.
    pub slug: PluginSlug,
    /// The display name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// How connections may authenticate.
    pub auth: AuthSchemes,
    /// Hosts it may call, as declared.
    pub allowed_hosts: Vec<String>,
    /// The CRM's rate limits.
    pub rate_limits: Vec<RateLimitDescription>,
    /// The entities it syncs.
    pub entities: Vec<EntityDescription>,
    /// What it can do.
    pub capabilities: CapabilitySet,
    /// Connection settings it reads.
    pub settings: Vec<SettingDescription>,
    /// Response headers that report rate-limit usage (read by the pacer).
    pub rate_limit_headers: Vec<RateLimitHeader>,
    /// What kind of system it connects to.
    pub category: Category,
    /// Its own logo (an SVG checked for active content), if it ships one.
    #[serde(skip)]
    pub logo_svg: Option<std::sync::Arc<str>>,
}

/// One way a connection may authenticate.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthDescription {
    /// OAuth 2.0 authorization-code flow.
    Oauth2(OAuth2Description),
    /// An API key entered at connect.
    ApiKey(ApiKeyDescription),
    /// HTTP Basic credentials entered at connect.
    Basic(BasicDescription),
}

impl AuthDescription {
    /// Its kind.
    pub fn kind(&self) -> AuthKind {
        match self {
            Self::Oauth2(_) => AuthKind::Oauth2,
            Self::ApiKey(_) => AuthKind::ApiKey,
            Self::Basic(_) => AuthKind::Basic,
        }
    }
}

/// The kinds of authentication; a connection records the one it was connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// OAuth 2.0: the user consents at the CRM.
    Oauth2,
    /// An API key an admin typed in.
    ApiKey,
    /// A user name and password an admin typed in.
    Basic,
}

impl AuthKind {
    /// `oauth2`, `api_key`, `basic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oauth2 => "oauth2",
            Self::ApiKey => "api_key",
            Self::Basic => "basic",
        }
    }

    /// The inverse of [`AuthKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Oauth2, Self::ApiKey, Self::Basic].into_iter().find(|k| k.as_str() == text)
    }

    /// Whether an admin types the credentials in rather than consenting at the CRM.
    pub fn is_entered(self) -> bool {
        matches!(self, Self::ApiKey | Self::Basic)
    }
}

/// The ways a plugin's connections may authenticate, the one to offer first first; at most one
/// of each kind. Empty: the CRM needs no credentials.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct AuthSchemes(Vec<AuthDescription>);

impl AuthSchemes {
    /// Schemes from a list already checked for repeats.
    pub fn new(schemes: Vec<AuthDescription>) -> Self {
        Self(schemes)
    }

    /// Every scheme, the first offered first.
    pub fn all(&self) -> &[AuthDescription] {
        &self.0
    }

    /// The scheme of a kind, if offered.
    pub fn of(&self, kind: AuthKind) -> Option<&AuthDescription> {
        self.0.iter().find(|s| s.kind() == kind)
    }

    /// The OAuth scheme, if offered.
    pub fn oauth2(&self) -> Option<&OAuth2Description> {
        self.0.iter().find_map(|s| match s {
            AuthDescription::Oauth2(o) => Some(o),
            _ => None,
        })
    }

    /// The kind offered first, or `None` for a CRM without credentials.
    pub fn first_kind(&self) -> Option<AuthKind> {
        self.0.first().map(AuthDescription::kind)
    }

    /// The kind a connection uses when it did not record one (connected before kinds were
    /// recorded): OAuth when offered, else the first.
    pub fn default_kind(&self) -> Option<AuthKind> {
        self.oauth2().map(|_| AuthKind::Oauth2).or_else(|| self.first_kind())
    }

    /// Every kind, in words: `oauth2 or api_key`, `none`.
    pub fn summary(&self) -> String {
        match self.0.is_empty() {
            true => "none".to_owned(),
            false => self.0.iter().map(|s| s.kind().as_str()).collect::<Vec<_>>().join(" or "),
        }
    }

    /// The catalogue's name of the first kind (`oauth2`, `api_key`, `basic`, `none`).
    pub fn primary(&self) -> &'static str {
        self.first_kind().map_or("none", AuthKind::as_str)
    }
}

/// Where an API key goes on each request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum ApiKeyPlacement {
    /// `name: <prefix><key>`.
    Header {
        /// The header name, lower-case.
        name: String,
        /// Written before the key.
        prefix: String,
    },
    /// A query parameter.
    Query {
        /// The parameter name.
        name: String,
    },
}

/// An API key scheme.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyDescription {
    /// Where the key goes.
    pub placement: ApiKeyPlacement,
    /// What the admin is asked for.
    pub label: String,
    /// Where to find it.
    pub help: String,
}

/// An HTTP Basic scheme.
#[derive(Debug, Clone, Serialize)]
pub struct BasicDescription {
    /// The user-name field's label.
    pub username_label: String,
    /// The password field's label.
    pub password_label: String,
    /// Where to find them.
    pub help: String,
}

/// What a rate-limit header reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMeasure {
    /// Requests allowed per short window.
    WindowLimit,
    /// Requests left in the window.
    WindowRemaining,
    /// The window's length, ms.
    WindowMs,
    /// Seconds until the window resets.
    WindowResetSeconds,
    /// Requests allowed per day.
    DailyLimit,
    /// Requests left today.
    DailyRemaining,
    /// `used/allowed` today.
    DailyUsage,
}

/// A declared rate-limit header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitHeader {
    /// The header name, lower-case.
    pub name: String,
    /// What it reports.
    pub measure: RateLimitMeasure,
    /// The `key=value` item to read, for list-valued headers.
    pub item: Option<String>,
}

/// OAuth 2.0 endpoints and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct OAuth2Description {
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Optional scopes.
    pub optional_scopes: Vec<String>,
    /// Separator between scopes.
    pub scope_separator: String,
    /// PKCE (S256) support.
    pub pkce: bool,
    /// Extra authorize-URL parameters.
    pub extra_authorize_params: Vec<(String, String)>,
    /// Token-response fields kept as connection facts.
    pub token_response_facts: Vec<String>,
}

/// A rate limit.
#[derive(Debug, Clone, Serialize)]
pub struct RateLimitDescription {
    /// What it counts against.
    pub scope: String,
    /// Requests per window.
    pub requests: u32,
    /// Window length in ms.
    pub window_ms: u64,
    /// Notes.
    pub notes: String,
}

/// An entity.
#[derive(Debug, Clone, Serialize)]
pub struct EntityDescription {
    /// Host-level name.
    pub name: String,
    /// Label.
    pub label: String,
    /// The CRM's name.
    pub crm_name: String,
    /// Match keys, default first.
    pub match_keys: Vec<String>,
    /// Default mappings.
    pub default_mappings: Vec<MappingDescription>,
}

/// A default field mapping.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MappingDescription {
    /// App field.
    pub app_field: String,
    /// CRM field.
    pub crm_field: String,
    /// `push` | `pull` | `both` | `none`.
    #[schema(value_type = String)]
    pub direction: &'static str,
    /// Named transform.
    pub transform: Option<String>,
}

/// What a plugin can do.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CapabilitySet {
    /// Push.
    pub push: bool,
    /// Pull.
    pub pull: bool,
    /// Incremental pull.
    pub incremental: bool,
    /// Delete.
    pub delete: bool,
    /// Webhooks.
    pub webhooks: bool,
}

/// A connection setting.
#[derive(Debug, Clone, Serialize)]
pub struct SettingDescription {
    /// Key.
    pub key: String,
    /// Meaning.
    pub description: String,
    /// Default.
    pub default_value: Option<String>,
}

fn check_url(what: &str, url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{what} `{url}` is not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!("{what} `{url}` must use https"));
    }
    Ok(url.to_owned())
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(format!("{what} `{name}` must be lower-case letters, digits and `_`")) }
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() || text.len() > max {
        return Err(format!("{what} must be non-empty and at most {max} characters"));
    }
    Ok(())
}

impl TryFrom<adapter::PluginInfo> for PluginDescription {
    type Error = String;

    fn try_from(info: adapter::PluginInfo) -> Result<Self, String> {
        let slug = PluginSlug::parse(&info.slug)?;
        check_text("name", &info.name, 100)?;
        check_text("version", &info.version, 64)?;
        if info.description.len() > 2_000 {
            return Err("description must be at most 2000 characters".to_owned());
        }
        let auth = auth_schemes(info.auth)?;
        let rate_limit_headers =
            info.rate_limit_headers.into_iter().map(rate_limit_header).collect::<Result<_, _>>()?;
        let logo_svg = info
            .logo_svg
            .map(|svg| check_svg(&svg).map(|()| std::sync::Arc::from(svg)))
            .transpose()
            .map_err(|e| format!("logo-svg: {e}"))?;
        for host in &info.allowed_hosts {
            HostPattern::parse(host).map_err(|e| format!("allowed host {e}"))?;
        }
        let mut seen = BTreeSet::new();
        let mut entities = Vec::with_capacity(info.entities.len());
        for e in info.entities {
            check_name("entity", &e.name)?;
            if !seen.insert(e.name.clone()) {
                return Err(format!("entity `{}` is declared twice", e.name));
            }
            check_text(&format!("entity `{}` crm-name", e.name), &e.crm_name, 200)?;
            let mut app_fields = BTreeSet::new();
            let mut default_mappings = Vec::with_capacity(e.default_mappings.len());
            for m in e.default_mappings {
                if m.app_field.is_empty() || m.crm_field.is_empty() {
                    return Err(format!("entity `{}` has a mapping with an empty field name", e.name));
                }
                if !app_fields.insert(m.app_field.clone()) {
                    return Err(format!("entity `{}` maps app field `{}` twice", e.name, m.app_field));
                }
                default_mappings.push(MappingDescription {
                    app_field: m.app_field,
                    crm_field: m.crm_field,
                    direction: match m.direction {
                        adapter::MappingDirection::Push => "push",
                        adapter::MappingDirection::Pull => "pull",
                        adapter::MappingDirection::Both => "both",
                        adapter::MappingDirection::None => "none",
                    },
                    transform: m.transform,
                });
            }
            entities.push(EntityDescription {
                label: if e.label.is_empty() { e.name.clone() } else { e.label },
                name: e.name,
                crm_name: e.crm_name,
                match_keys: e.match_keys,
                default_mappings,
            });
        }
        let caps = info.capabilities;
        let capabilities = CapabilitySet {
            push: caps.contains(adapter::Capabilities::PUSH),
            pull: caps.contains(adapter::Capabilities::PULL),
            incremental: caps.contains(adapter::Capabilities::INCREMENTAL),
            delete: caps.contains(adapter::Capabilities::DELETE),
            webhooks: caps.contains(adapter::Capabilities::WEBHOOKS),
        };
        if capabilities.push
            && let Some(e) = entities.iter().find(|e| e.match_keys.is_empty())
        {
            return Err(format!("entity `{}` has no match key, but the plugin declares push", e.name));
        }
        Ok(Self {
            slug,
            name: info.name,
            version: info.version,
            description: info.description,
            auth,
            allowed_hosts: info.allowed_hosts,
            rate_limits: info
                .rate_limits
                .into_iter()
                .map(|r| RateLimitDescription {
                    scope: r.scope,
                    requests: r.requests,
                    window_ms: r.window_ms,
                    notes: r.notes,
                })
                .collect(),
            entities,
            capabilities,
            settings: info
                .settings
                .into_iter()
                .map(|s| SettingDescription { key: s.key, description: s.description, default_value: s.default_value })
                .collect(),
            rate_limit_headers,
            category: match info.category {
                adapter::Category::Crm => Category::Crm,
                adapter::Category::Marketing => Category::Marketing,
                adapter::Category::Support => Category::Support,
                adapter::Category::Erp => Category::Erp,
                adapter::Category::Other => Category::Other,
            },
            logo_svg,
        })
    }
}

fn auth_schemes(declared: Vec<adapter::AuthInfo>) -> Result<AuthSchemes, String> {
    let mut schemes: Vec<AuthDescription> = Vec::with_capacity(declared.len());
    for info in declared {
        let scheme = auth_description(info)?;
        if schemes.iter().any(|s| s.kind() == scheme.kind()) {
            return Err(format!("auth declares `{}` twice", scheme.kind().as_str()));
        }
        schemes.push(scheme);
    }
    Ok(AuthSchemes::new(schemes))
}

fn auth_description(auth: adapter::AuthInfo) -> Result<AuthDescription, String> {
    Ok(match auth {
        adapter::AuthInfo::Oauth2(o) => AuthDescription::Oauth2(OAuth2Description {
            authorize_url: check_url("authorize-url", &o.authorize_url)?,
            token_url: check_url("token-url", &o.token_url)?,
            revoke_url: o.revoke_url.as_deref().map(|u| check_url("revoke-url", u)).transpose()?,
            scopes: o.scopes,
            optional_scopes: o.optional_scopes,
            scope_separator: if o.scope_separator.is_empty() { " ".to_owned() } else { o.scope_separator },
            pkce: o.pkce,
            extra_authorize_params: o.extra_authorize_params,
            token_response_facts: o.token_response_facts,
        }),
        adapter::AuthInfo::ApiKey(k) => {
            let placement = match k.placement {
                adapter::ApiKeyPlacement::Header(h) => {
                    let name = h.name.to_ascii_lowercase();
                    check_header_name(&name)?;
                    if h.prefix.len() > 32 || h.prefix.chars().any(|c| c.is_control()) {
                        return Err("api-key header prefix must be at most 32 printable characters".to_owned());
                    }
                    ApiKeyPlacement::Header { name, prefix: h.prefix }
                }
                adapter::ApiKeyPlacement::Query(name) => {
                    let ok = !name.is_empty()
                        && name.len() <= 64
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                    if !ok {
                        return Err(format!(
                            "api-key query parameter `{name}` must be 1–64 of A–Z, a–z, 0–9, `_`, `-`, `.`"
                        ));
                    }
                    ApiKeyPlacement::Query { name }
                }
            };
            check_text("api-key label", &k.label, 100)?;
            check_help(&k.help)?;
            AuthDescription::ApiKey(ApiKeyDescription { placement, label: k.label, help: k.help })
        }
        adapter::AuthInfo::Basic(b) => {
            check_text("basic username-label", &b.username_label, 100)?;
            check_text("basic password-label", &b.password_label, 100)?;
            check_help(&b.help)?;
            AuthDescription::Basic(BasicDescription {
                username_label: b.username_label,
                password_label: b.password_label,
                help: b.help,
            })
        }
    })
}

/// A header an API key may be put in: a token, and not one the host or the client owns (`host`,
/// `cookie`, hop-by-hop). `authorization` is allowed: it is where many CRMs want a key.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !token {
        return Err(format!("api-key header `{name}` is not a valid header name"));
    }
    if name != "authorization" && super::capability::http::header_forbidden(name) {
        return Err(format!("api-key header `{name}` is one the host controls"));
    }
    Ok(())
}

fn check_help(help: &str) -> Result<(), String> {
    if help.len() > 500 {
        return Err("auth help must be at most 500 characters".to_owned());
    }
    Ok(())
}

fn rate_limit_header(h: adapter::RateLimitHeader) -> Result<RateLimitHeader, String> {
    let name = h.name.to_ascii_lowercase();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(format!("rate-limit header `{}` is not a valid header name", h.name));
    }
    let measure = match h.measure {
        adapter::RateLimitMeasure::WindowLimit => RateLimitMeasure::WindowLimit,
        adapter::RateLimitMeasure::WindowRemaining => RateLimitMeasure::WindowRemaining,
        adapter::RateLimitMeasure::WindowMs => RateLimitMeasure::WindowMs,
        adapter::RateLimitMeasure::WindowResetSeconds => RateLimitMeasure::WindowResetSeconds,
        adapter::RateLimitMeasure::DailyLimit => RateLimitMeasure::DailyLimit,
        adapter::RateLimitMeasure::DailyRemaining => RateLimitMeasure::DailyRemaining,
        adapter::RateLimitMeasure::DailyUsage => RateLimitMeasure::DailyUsage,
    };
    if let Some(item) = &h.item
        && (item.is_empty() || item.len() > 64 || item.contains(['=', ';', ',']))
    {
        return Err(format!("rate-limit header `{name}` item `{item}` must be a key without `=`, `;` or `,`"));
    }
    Ok(RateLimitHeader { name, measure, item: h.item })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> adapter::PluginInfo {
        adapter::PluginInfo {
            slug: "acme".to_owned(),
            name: "Acme".to_owned(),
            version: "1.0.0".to_owned(),
            description: String::new(),
            auth: vec![],
            allowed_hosts: vec!["api.acme.com".to_owned()],
            rate_limits: vec![],
            entities: vec![adapter::EntityInfo {
                name: "contact".to_owned(),
                label: String::new(),
                crm_name: "Contact".to_owned(),
                match_keys: vec!["email".to_owned()],
                default_mappings: vec![],
            }],
            capabilities: adapter::Capabilities::PUSH,
            settings: vec![],
            rate_limit_headers: vec![],
            category: adapter::Category::Crm,
            logo_svg: None,
        }
    }

    #[test]
    fn a_well_formed_description_converts() {
        let d = PluginDescription::try_from(info()).unwrap();
        assert_eq!(d.slug.as_str(), "acme");
        assert_eq!(d.entities[0].label, "contact", "an empty label falls back to the name");
        assert!(d.capabilities.push && !d.capabilities.pull);
    }

    #[test]
    fn an_api_key_scheme_and_rate_limit_headers_convert_lower_cased() {
        let mut i = info();
        let oauth = adapter::Oauth2Info {
            authorize_url: "https://login.acme.com/authorize".to_owned(),
            token_url: "https://login.acme.com/token".to_owned(),
            revoke_url: None,
            scopes: vec![],
            optional_scopes: vec![],
            scope_separator: String::new(),
            pkce: false,
            extra_authorize_params: vec![],
            token_response_facts: vec![],
        };
        i.auth = vec![
            adapter::AuthInfo::ApiKey(adapter::ApiKeyInfo {
                placement: adapter::ApiKeyPlacement::Header(adapter::ApiKeyHeader {
                    name: "X-Api-Token".to_owned(),
                    prefix: String::new(),
                }),
                label: "API token".to_owned(),
                help: "Settings → API".to_owned(),
            }),
            adapter::AuthInfo::Oauth2(oauth),
        ];
        i.rate_limit_headers = vec![adapter::RateLimitHeader {
            name: "Sforce-Limit-Info".to_owned(),
            measure: adapter::RateLimitMeasure::DailyUsage,
            item: Some("api-usage".to_owned()),
        }];
        i.category = adapter::Category::Support;
        let d = PluginDescription::try_from(i).unwrap();
        assert!(matches!(d.auth.of(AuthKind::ApiKey), Some(AuthDescription::ApiKey(k))
            if k.placement == ApiKeyPlacement::Header { name: "x-api-token".to_owned(), prefix: String::new() }));
        assert_eq!(d.auth.primary(), "api_key", "the first declared is offered first");
        assert_eq!(d.auth.default_kind(), Some(AuthKind::Oauth2), "a connection that recorded none used OAuth");
        assert_eq!(d.auth.oauth2().map(|o| o.scope_separator.as_str()), Some(" "));
        assert_eq!(PluginDescription::try_from(info()).unwrap().auth.primary(), "none");
        assert_eq!(d.rate_limit_headers[0].name, "sforce-limit-info");
        assert_eq!(d.category, Category::Support);
    }

    #[test]
    fn each_malformed_part_is_rejected_with_a_reason() {
        type Mutation = Box<dyn Fn(&mut adapter::PluginInfo)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|i| i.slug = "Bad Slug".to_owned()), "not a valid slug"),
            (Box::new(|i| i.name = " ".to_owned()), "name"),
            (Box::new(|i| i.allowed_hosts = vec!["https://x.com".to_owned()]), "allowed host"),
            (Box::new(|i| i.entities.push(i.entities[0].clone())), "declared twice"),
            (Box::new(|i| i.entities[0].name = "Contact".to_owned()), "entity"),
            (Box::new(|i| i.entities[0].match_keys.clear()), "no match key"),
            (
                Box::new(|i| {
                    i.auth = vec![adapter::AuthInfo::Oauth2(adapter::Oauth2Info {
                        authorize_url: "http://insecure.example/auth".to_owned(),
                        token_url: "https://x/token".to_owned(),
                        revoke_url: None,
                        scopes: vec![],
                        optional_scopes: vec![],
                        scope_separator: " ".to_owned(),
                        pkce: true,
                        extra_authorize_params: vec![],
                        token_response_facts: vec![],
                    })]
                }),
                "must use https",
            ),
            (
                Box::new(|i| {
                    i.auth = vec![adapter::AuthInfo::ApiKey(adapter::ApiKeyInfo {
                        placement: adapter::ApiKeyPlacement::Header(adapter::ApiKeyHeader {
                            name: "Cookie".to_owned(),
                            prefix: String::new(),
                        }),
                        label: "API token".to_owned(),
                        help: String::new(),
                    })]
                }),
                "one the host controls",
            ),
            (
                Box::new(|i| {
                    i.auth = vec![adapter::AuthInfo::ApiKey(adapter::ApiKeyInfo {
                        placement: adapter::ApiKeyPlacement::Query("api token".to_owned()),
                        label: "API token".to_owned(),
                        help: String::new(),
                    })]
                }),
                "query parameter",
            ),
            (
                Box::new(|i| {
                    let basic = || {
                        adapter::AuthInfo::Basic(adapter::BasicInfo {
                            username_label: "Email".to_owned(),
                            password_label: "Token".to_owned(),
                            help: String::new(),
                        })
                    };
                    i.auth = vec![basic(), basic()];
                }),
                "declares `basic` twice",
            ),
            (
                Box::new(|i| {
                    i.rate_limit_headers = vec![adapter::RateLimitHeader {
                        name: "x-limit: 1".to_owned(),
                        measure: adapter::RateLimitMeasure::WindowLimit,
                        item: None,
                    }]
                }),
                "not a valid header name",
            ),
            (Box::new(|i| i.logo_svg = Some("<svg><script>alert(1)</script></svg>".to_owned())), "logo-svg"),
        ];
        for (mutate, expected) in cases {
            let mut bad = info();
            mutate(&mut bad);
            let err = PluginDescription::try_from(bad).unwrap_err();
            assert!(err.contains(expected), "expected `{expected}` in `{err}`");
        }
    }
}
