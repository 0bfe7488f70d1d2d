//! [`PluginDescription`]: what `describe()` returned, validated and converted into host types.
//!
//! The rest of the host never sees the generated WIT record: it sees this, which is known to be
//! well-formed (slug, URLs, host patterns, entity names) and serialises for the API catalogue.

use std::collections::BTreeSet;

use serde::Serialize;

use super::bindings::adapter;
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
    /// How connections authenticate.
    pub auth: AuthDescription,
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
}

/// How connections authenticate.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthDescription {
    /// OAuth 2.0 authorization-code flow.
    Oauth2(OAuth2Description),
    /// No credentials.
    None,
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
        let auth = match info.auth {
            adapter::AuthInfo::None => AuthDescription::None,
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
        };
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
        })
    }
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
            auth: adapter::AuthInfo::None,
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
                    i.auth = adapter::AuthInfo::Oauth2(adapter::Oauth2Info {
                        authorize_url: "http://insecure.example/auth".to_owned(),
                        token_url: "https://x/token".to_owned(),
                        revoke_url: None,
                        scopes: vec![],
                        optional_scopes: vec![],
                        scope_separator: " ".to_owned(),
                        pkce: true,
                        extra_authorize_params: vec![],
                        token_response_facts: vec![],
                    })
                }),
                "must use https",
            ),
        ];
        for (mutate, expected) in cases {
            let mut bad = info();
            mutate(&mut bad);
            let err = PluginDescription::try_from(bad).unwrap_err();
            assert!(err.contains(expected), "expected `{expected}` in `{err}`");
        }
    }
}
