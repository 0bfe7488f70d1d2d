//! [`Carry`]: a value of one contract version as the same value in the other. The two versions'
//! generated types differ only by Rust path where their WIT is unchanged, so carrying is field by
//! field; where 0.2 added something (auth schemes, rate-limit headers, category, logo,
//! `no-credentials`), a 0.1 value carries the 0.2 default and a 0.2-only value its nearest 0.1 form.

use super::crmhost::adapter as now_imports;
use super::crmhost::adapter::{http as now_http, log as now_log};
use super::v0_1::crmhost::adapter as old_imports;
use super::v0_1::crmhost::adapter::{http as old_http, log as old_log};
use super::v0_1::{adapter as old, counting as old_counting, files as old_files};
use super::{AdapterError, FieldValue, adapter as now, counting as now_counting, files as now_files};

/// Converts a value between the contract versions' generated types.
pub(crate) trait Carry<T> {
    fn carry(self) -> T;
}

/// Types both versions share, and plain data: carried as they are.
macro_rules! carry_as_is {
    ($($t:ty),* $(,)?) => {
        $(impl Carry<$t> for $t {
            fn carry(self) -> $t {
                self
            }
        })*
    };
}
carry_as_is!(String, u8, u16, u32, u64, bool, FieldValue, AdapterError);

impl<A: Carry<B>, B> Carry<Vec<B>> for Vec<A> {
    fn carry(self) -> Vec<B> {
        self.into_iter().map(Carry::carry).collect()
    }
}

impl<A: Carry<B>, B> Carry<Option<B>> for Option<A> {
    fn carry(self) -> Option<B> {
        self.map(Carry::carry)
    }
}

impl<A1: Carry<B1>, A2: Carry<B2>, B1, B2> Carry<(B1, B2)> for (A1, A2) {
    fn carry(self) -> (B1, B2) {
        (self.0.carry(), self.1.carry())
    }
}

/// A record whose fields are the same in both versions.
macro_rules! carry_record {
    ($from:ident :: $ty:ident => $to:ident { $($field:ident),* $(,)? }) => {
        impl Carry<$to::$ty> for $from::$ty {
            fn carry(self) -> $to::$ty {
                $to::$ty { $($field: self.$field.carry()),* }
            }
        }
    };
}

/// An enum (or a variant with one payload per case) whose cases are the same in both versions.
macro_rules! carry_cases {
    ($from:ident :: $ty:ident => $to:ident { $($case:ident $(($payload:ident))?),* $(,)? }) => {
        impl Carry<$to::$ty> for $from::$ty {
            fn carry(self) -> $to::$ty {
                match self {
                    $($from::$ty::$case $(($payload))? => $to::$ty::$case $(($payload.carry()))?),*
                }
            }
        }
    };
}

// Answers: 0.1 → 0.2.
carry_record!(old::Oauth2Info => now { authorize_url, token_url, revoke_url, scopes, optional_scopes, scope_separator, pkce, extra_authorize_params, token_response_facts });
carry_record!(old::RateLimit => now { scope, requests, window_ms, notes });
carry_record!(old::FieldMapping => now { app_field, crm_field, direction, transform });
carry_record!(old::EntityInfo => now { name, label, crm_name, match_keys, default_mappings });
carry_record!(old::SettingInfo => now { key, description, default_value });
carry_record!(old::AccountInfo => now { account_id, label, user, details });
carry_record!(old::FieldInfo => now { name, label, field_type, required, writable, unique, options });
carry_record!(old::CrmRecord => now { id, fields, modified_at, deleted });
carry_record!(old::Page => now { records, next_cursor });
carry_record!(old::ChangeEvent => now { account_id, entity, crm_id, kind, occurred_at, event_id });
carry_record!(old_files::FileInfo => now_files { id, name, content_type, size, modified_at });
carry_record!(old_files::DownloadRequest => now_files { url, headers, with_credentials });
carry_cases!(old::MappingDirection => now { Push, Pull, Both, None });
carry_cases!(old::FieldType => now {
    Text, Textarea, Email, Phone, Url, Integer, Number, Currency, Percent, Boolean, Date, DateTime, Picklist,
    MultiPicklist, Reference, Id, Other,
});
carry_cases!(old::ChangeKind => now { Created, Updated, Deleted, Restored, Merged });
carry_cases!(old::PushOutcome => now { Created(id), Updated(id), Failed(error) });
carry_cases!(old::DeleteOutcome => now { Deleted, Failed(error) });

/// 0.1 had one scheme (or none); 0.2 lists them.
impl Carry<Vec<now::AuthInfo>> for old::AuthInfo {
    fn carry(self) -> Vec<now::AuthInfo> {
        match self {
            old::AuthInfo::Oauth2(info) => vec![now::AuthInfo::Oauth2(info.carry())],
            old::AuthInfo::None => Vec::new(),
        }
    }
}

impl Carry<now::Capabilities> for old::Capabilities {
    fn carry(self) -> now::Capabilities {
        let pairs = [
            (old::Capabilities::PUSH, now::Capabilities::PUSH),
            (old::Capabilities::PULL, now::Capabilities::PULL),
            (old::Capabilities::INCREMENTAL, now::Capabilities::INCREMENTAL),
            (old::Capabilities::DELETE, now::Capabilities::DELETE),
            (old::Capabilities::WEBHOOKS, now::Capabilities::WEBHOOKS),
        ];
        pairs
            .into_iter()
            .filter(|(old, _)| self.contains(*old))
            .fold(now::Capabilities::empty(), |all, (_, new)| all | new)
    }
}

impl Carry<now::PluginInfo> for old::PluginInfo {
    fn carry(self) -> now::PluginInfo {
        now::PluginInfo {
            slug: self.slug,
            name: self.name,
            version: self.version,
            description: self.description,
            auth: self.auth.carry(),
            allowed_hosts: self.allowed_hosts,
            rate_limits: self.rate_limits.carry(),
            entities: self.entities.carry(),
            capabilities: self.capabilities.carry(),
            settings: self.settings.carry(),
            // Added in 0.2: a 0.1 plugin declares none of them.
            rate_limit_headers: Vec::new(),
            category: now::Category::Crm,
            logo_svg: None,
        }
    }
}

// Inputs: 0.2 → 0.1.
carry_record!(now::PullRequest => old { entity, cursor, modified_since, ids, fields, limit });
carry_record!(now::PushRecord => old { crm_id, fields });
carry_record!(now::WebhookRequest => old { method, url, headers, body, received_at_ms });
carry_record!(now_counting::CountRequest => old_counting { entity, modified_since });

// The 0.1 imports, served by the 0.2 ones.
carry_cases!(old_http::Method => now_http { Get, Head, Post, Put, Patch, Delete });
carry_record!(old_http::Request => now_http { method, url, headers, body, timeout_ms });
carry_record!(now_http::Response => old_http { status, headers, body });
carry_cases!(old_log::Level => now_log { Trace, Debug, Info, Warn, Error });

impl Carry<old_imports::http::HttpError> for now_imports::http::HttpError {
    fn carry(self) -> old_imports::http::HttpError {
        use now_imports::http::HttpError as Now;
        use old_imports::http::HttpError as Old;
        match self {
            Now::Denied(reason) => Old::Denied(reason),
            Now::TooLarge(reason) => Old::TooLarge(reason),
            Now::Timeout => Old::Timeout,
            Now::Connection(reason) => Old::Connection(reason),
            Now::InvalidRequest(reason) => Old::InvalidRequest(reason),
            // The 0.1 SDK recognises this prefix and reports `unauthorized`.
            Now::NoCredentials(reason) => Old::Denied(format!("no usable credentials: {reason}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_credential_reaches_a_0_1_plugin_as_the_denial_its_sdk_recognises() {
        let carried: old_imports::http::HttpError =
            now_imports::http::HttpError::NoCredentials("revoked".into()).carry();
        assert!(matches!(carried, old_imports::http::HttpError::Denied(m) if m == "no usable credentials: revoked"));
    }

    #[test]
    fn a_0_1_description_carries_every_capability_and_the_0_2_defaults() {
        let info = old::PluginInfo {
            slug: "legacy".into(),
            name: "Legacy".into(),
            version: "1.0.0".into(),
            description: String::new(),
            auth: old::AuthInfo::None,
            allowed_hosts: vec!["api.legacy.example".into()],
            rate_limits: vec![old::RateLimit {
                scope: "app".into(),
                requests: 10,
                window_ms: 1000,
                notes: String::new(),
            }],
            entities: vec![],
            capabilities: old::Capabilities::PULL | old::Capabilities::WEBHOOKS,
            settings: vec![],
        };
        let now: now::PluginInfo = info.carry();
        assert_eq!(now.capabilities, now::Capabilities::PULL | now::Capabilities::WEBHOOKS);
        assert_eq!(now.rate_limits[0].requests, 10);
        assert!(now.rate_limit_headers.is_empty() && now.logo_svg.is_none() && now.auth.is_empty());
        assert_eq!(now.category, now::Category::Crm);
    }
}
