//! Builders for [`PluginInfo`] and [`EntityInfo`], so a `describe()` reads as a declaration.

use crate::{
    ApiKeyHeader, ApiKeyInfo, ApiKeyPlacement, AuthInfo, BasicInfo, Capabilities, Category, EntityInfo, FieldMapping,
    MappingDirection, Oauth2Info, PluginInfo, RateLimit, RateLimitHeader, RateLimitMeasure, SettingInfo,
};

impl PluginInfo {
    /// Starts describing a plugin with its slug, display name and version.
    pub fn builder(slug: &str, name: &str, version: &str) -> PluginInfoBuilder {
        PluginInfoBuilder {
            info: PluginInfo {
                slug: slug.to_owned(),
                name: name.to_owned(),
                version: version.to_owned(),
                description: String::new(),
                auth: Vec::new(),
                allowed_hosts: Vec::new(),
                rate_limits: Vec::new(),
                entities: Vec::new(),
                capabilities: Capabilities::empty(),
                settings: Vec::new(),
                rate_limit_headers: Vec::new(),
                category: Category::Crm,
                logo_svg: None,
            },
        }
    }
}

/// Builds a [`PluginInfo`]; see [`PluginInfo::builder`].
#[derive(Debug, Clone)]
pub struct PluginInfoBuilder {
    info: PluginInfo,
}

impl PluginInfoBuilder {
    /// A one-paragraph description.
    pub fn description(mut self, text: &str) -> Self {
        self.info.description = text.to_owned();
        self
    }

    /// Connections may authenticate with OAuth 2.0 (the host runs the flow). Each auth method
    /// adds a way to connect, the first added offered first; adding a kind again replaces it.
    pub fn oauth2(self, oauth: Oauth2Info) -> Self {
        self.auth(AuthInfo::Oauth2(oauth))
    }

    fn auth(mut self, scheme: AuthInfo) -> Self {
        let kind = std::mem::discriminant(&scheme);
        match self.info.auth.iter_mut().find(|s| std::mem::discriminant(*s) == kind) {
            Some(existing) => *existing = scheme,
            None => self.info.auth.push(scheme),
        }
        self
    }

    /// Connections may authenticate with an API key an admin enters at connect, sent in header
    /// `name` as `<prefix><key>` by the host (`"x-api-token", ""`, or `"authorization", "Token "`).
    /// `label` is what the admin is asked for, `help` where to find it.
    pub fn api_key_header(self, name: &str, prefix: &str, label: &str, help: &str) -> Self {
        let placement = ApiKeyPlacement::Header(ApiKeyHeader { name: name.to_owned(), prefix: prefix.to_owned() });
        self.auth(AuthInfo::ApiKey(ApiKeyInfo { placement, label: label.to_owned(), help: help.to_owned() }))
    }

    /// Connections may authenticate with an API key sent as the query parameter `name` (only
    /// where the CRM accepts no header: URLs end up in proxies' logs).
    pub fn api_key_query(self, name: &str, label: &str, help: &str) -> Self {
        let placement = ApiKeyPlacement::Query(name.to_owned());
        self.auth(AuthInfo::ApiKey(ApiKeyInfo { placement, label: label.to_owned(), help: help.to_owned() }))
    }

    /// Connections may authenticate with HTTP Basic credentials an admin enters at connect.
    pub fn basic(self, username_label: &str, password_label: &str, help: &str) -> Self {
        self.auth(AuthInfo::Basic(BasicInfo {
            username_label: username_label.to_owned(),
            password_label: password_label.to_owned(),
            help: help.to_owned(),
        }))
    }

    /// A response header that reports rate-limit usage, so the host paces this CRM's requests
    /// by what it says; `item` names the `key=value` item of a list-valued header.
    pub fn rate_limit_header(mut self, name: &str, measure: RateLimitMeasure, item: Option<&str>) -> Self {
        self.info.rate_limit_headers.push(RateLimitHeader {
            name: name.to_owned(),
            measure,
            item: item.map(str::to_owned),
        });
        self
    }

    /// What kind of system the plugin connects to (a CRM unless said otherwise).
    pub fn category(mut self, category: Category) -> Self {
        self.info.category = category;
        self
    }

    /// The plugin's logo: a static SVG of at most 64 KiB (`include_str!("../assets/logo.svg")`).
    pub fn logo_svg(mut self, svg: &str) -> Self {
        self.info.logo_svg = Some(svg.to_owned());
        self
    }

    /// A host the plugin may call (`api.example.com`, `*.example.com`, optionally `:port`).
    pub fn allowed_host(mut self, host: &str) -> Self {
        self.info.allowed_hosts.push(host.to_owned());
        self
    }

    /// A rate limit the CRM enforces.
    pub fn rate_limit(mut self, scope: &str, requests: u32, window_ms: u64, notes: &str) -> Self {
        self.info.rate_limits.push(RateLimit { scope: scope.to_owned(), requests, window_ms, notes: notes.to_owned() });
        self
    }

    /// An entity the plugin syncs.
    pub fn entity(mut self, entity: EntityBuilder) -> Self {
        self.info.entities.push(entity.build());
        self
    }

    /// What the plugin can do.
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.info.capabilities = caps;
        self
    }

    /// A connection setting the plugin reads, with its default.
    pub fn setting(mut self, key: &str, description: &str, default_value: Option<&str>) -> Self {
        self.info.settings.push(SettingInfo {
            key: key.to_owned(),
            description: description.to_owned(),
            default_value: default_value.map(str::to_owned),
        });
        self
    }

    /// The finished description.
    pub fn build(self) -> PluginInfo {
        self.info
    }
}

impl Oauth2Info {
    /// OAuth 2.0 endpoints and the scopes to request; PKCE off, space-separated scopes, no extras.
    pub fn new(authorize_url: &str, token_url: &str, scopes: &[&str]) -> Self {
        Self {
            authorize_url: authorize_url.to_owned(),
            token_url: token_url.to_owned(),
            revoke_url: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            optional_scopes: Vec::new(),
            scope_separator: " ".to_owned(),
            pkce: false,
            extra_authorize_params: Vec::new(),
            token_response_facts: Vec::new(),
        }
    }
}

impl EntityInfo {
    /// Starts describing an entity: the host-level name, a label and the CRM's name for it.
    pub fn builder(name: &str, label: &str, crm_name: &str) -> EntityBuilder {
        EntityBuilder {
            info: EntityInfo {
                name: name.to_owned(),
                label: label.to_owned(),
                crm_name: crm_name.to_owned(),
                match_keys: Vec::new(),
                default_mappings: Vec::new(),
            },
        }
    }
}

/// Builds an [`EntityInfo`]; see [`EntityInfo::builder`].
#[derive(Debug, Clone)]
pub struct EntityBuilder {
    info: EntityInfo,
}

impl EntityBuilder {
    /// A CRM field usable as an upsert match key; the first one added is the default.
    pub fn match_key(mut self, crm_field: &str) -> Self {
        self.info.match_keys.push(crm_field.to_owned());
        self
    }

    /// A default two-way mapping `app_field ↔ crm_field`.
    pub fn map(self, app_field: &str, crm_field: &str) -> Self {
        self.map_with(app_field, crm_field, MappingDirection::Both, None)
    }

    /// A default mapping with a direction and an optional named transform.
    pub fn map_with(
        mut self,
        app_field: &str,
        crm_field: &str,
        direction: MappingDirection,
        transform: Option<&str>,
    ) -> Self {
        self.info.default_mappings.push(FieldMapping {
            app_field: app_field.to_owned(),
            crm_field: crm_field.to_owned(),
            direction,
            transform: transform.map(str::to_owned),
        });
        self
    }

    /// The finished entity.
    pub fn build(self) -> EntityInfo {
        self.info
    }
}
