//! Settling a conflict by hand: the user picks a side (for the whole record or per field) or
//! supplies merged values; the result is written to both sides and becomes the new merge base.
//! Ignoring a conflict writes nothing and lets the next sync merge the record again.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::merge::FieldRule;
use super::run::error_json;
use super::values::{coerce_like, same_value};
use super::{SyncEngine, SyncError};
use crate::domain::{ConflictId, ConflictStatus, CrmId, EntityName, FieldName, PluginSlug, RecordId, WorkspaceId};
use crate::plugins::adapter_error_summary;
use crate::plugins::bindings::adapter::{PushOutcome, PushRecord};
use crate::store::{AuditAction, AuditTarget, LinkStatus, LinkWrite, StoreResultExt, SyncConflict};

/// Which side a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The workspace's value.
    App,
    /// The CRM's value.
    Crm,
}

/// How a user settles a conflict. JSON: `{"resolution": "use_app"}`, `{"resolution": "use_crm"}`,
/// `{"resolution": "always_use_app" | "always_use_crm", "apply_to_pending": true?}` (that side,
/// and a field rule for every conflicting field from now on),
/// `{"fields": {"<app field>": "app" | "crm", …}}` (every conflicting field), or
/// `{"values": {"<app field>": <value>, …}}` (merged values; fields not named keep the app's).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// `use_app`, `use_crm`, `always_use_app` or `always_use_crm` for every conflicting field.
    #[schema(pattern = "^(use_app|use_crm|always_use_app|always_use_crm)$")]
    pub resolution: Option<String>,
    /// A side per field.
    pub fields: Option<BTreeMap<String, Pick>>,
    /// Values to write.
    #[schema(value_type = Option<Object>)]
    pub values: Option<Map<String, Json>>,
    /// With `always_use_*`: also settle the other pending conflicts the new rules decide.
    pub apply_to_pending: Option<bool>,
}

impl Resolution {
    /// A side per conflicting field.
    pub(super) fn by_fields(fields: BTreeMap<String, Pick>) -> Self {
        Self { fields: Some(fields), ..Self::default() }
    }

    /// The field rule an `always_use_*` resolution sets.
    pub fn rule(&self) -> Option<FieldRule> {
        match self.resolution.as_deref() {
            Some("always_use_app") => Some(FieldRule::App),
            Some("always_use_crm") => Some(FieldRule::Crm),
            _ => None,
        }
    }

    /// The value each conflicting field ends with.
    fn choose(&self, conflict: &SyncConflict) -> Result<Map<String, Json>, SyncError> {
        if self.apply_to_pending.is_some() && self.rule().is_none() {
            return Err(SyncError::BadInput(
                "apply_to_pending goes with resolution always_use_app or always_use_crm".to_owned(),
            ));
        }
        let given = [self.resolution.is_some(), self.fields.is_some(), self.values.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(SyncError::BadInput(
                "send exactly one of `resolution` (use_app | use_crm), `fields` or `values`".to_owned(),
            ));
        }
        let side = |field: &str, pick: Pick| -> Json {
            let source = if pick == Pick::App { &conflict.app_values } else { &conflict.crm_values };
            source.get(field).cloned().unwrap_or(Json::Null)
        };
        let mut chosen = Map::new();
        if let Some(whole) = &self.resolution {
            let pick = match whole.as_str() {
                "use_app" | "always_use_app" => Pick::App,
                "use_crm" | "always_use_crm" => Pick::Crm,
                other => {
                    return Err(SyncError::BadInput(format!(
                        "resolution `{other}` is not use_app, use_crm, always_use_app or always_use_crm"
                    )));
                }
            };
            for f in &conflict.conflicting_fields {
                chosen.insert(f.clone(), side(f, pick));
            }
        }
        if let Some(fields) = &self.fields {
            if let Some(extra) = fields.keys().find(|f| !conflict.conflicting_fields.contains(f)) {
                return Err(SyncError::BadInput(format!(
                    "`{extra}` is not a conflicting field (they are: {})",
                    conflict.conflicting_fields.join(", ")
                )));
            }
            let missing: Vec<&str> =
                conflict.conflicting_fields.iter().filter(|f| !fields.contains_key(*f)).map(String::as_str).collect();
            if !missing.is_empty() {
                return Err(SyncError::BadInput(format!(
                    "choose \"app\" or \"crm\" for every conflicting field; missing: {}",
                    missing.join(", ")
                )));
            }
            for (f, pick) in fields {
                chosen.insert(f.clone(), side(f, *pick));
            }
        }
        if let Some(values) = &self.values {
            let known: Vec<&String> = conflict.app_values.keys().collect();
            if let Some(unknown) = values.keys().find(|k| !known.contains(k)) {
                return Err(SyncError::BadInput(format!("`{unknown}` is not a synced field of this record")));
            }
            if let Some((k, _)) = values.iter().find(|(_, v)| v.is_array() || v.is_object()) {
                return Err(SyncError::BadInput(format!("`{k}` must be a string, number, boolean or null")));
            }
            chosen.extend(values.clone());
        }
        Ok(chosen)
    }
}

impl SyncEngine {
    /// Resolves a pending conflict: writes the chosen values to the workspace record and to the
    /// CRM, marks the record synced with them as the base, and closes the conflict.
    /// An `always_use_*` resolution then sets a field rule for every conflicting field and, with
    /// `apply_to_pending`, settles the other pending conflicts those rules decide.
    #[tracing::instrument(name = "sync.resolve_conflict", skip_all, fields(workspace = %workspace, conflict = %conflict_id))]
    pub async fn resolve_conflict(
        &self,
        workspace: &WorkspaceId,
        conflict_id: &ConflictId,
        resolution: &Resolution,
        user: &str,
    ) -> Result<SyncConflict, SyncError> {
        let resolved = self.resolve_one(workspace, conflict_id, resolution, user).await?;
        if let Some(rule) = resolution.rule() {
            let slug = PluginSlug::parse(&resolved.integration).map_err(SyncError::BadInput)?;
            let entity = EntityName::parse(&resolved.entity).map_err(SyncError::BadInput)?;
            let fields: Vec<FieldName> =
                resolved.conflicting_fields.iter().filter_map(|f| FieldName::parse(f).ok()).collect();
            let changes: Vec<(FieldName, Option<FieldRule>)> = fields.iter().map(|f| (f.clone(), Some(rule))).collect();
            let rules = self.set_field_rules(workspace, &slug, &entity, &changes, user).await?;
            if resolution.apply_to_pending == Some(true) {
                let mut change = super::RuleChange { entity, rules, settled: Vec::new(), left_pending: Vec::new() };
                for field in &fields {
                    self.settle_by_rules(workspace, &slug, field, &mut change, user).await?;
                }
            }
        }
        Ok(resolved)
    }

    /// Resolves one pending conflict as [`SyncEngine::resolve_conflict`] does, without rules.
    pub(super) async fn resolve_one(
        &self,
        workspace: &WorkspaceId,
        conflict_id: &ConflictId,
        resolution: &Resolution,
        user: &str,
    ) -> Result<SyncConflict, SyncError> {
        let conflict = self.pending_conflict(workspace, conflict_id).await?;
        let chosen = resolution.choose(&conflict)?;
        let slug = PluginSlug::parse(&conflict.integration).map_err(SyncError::BadInput)?;
        let entity = EntityName::parse(&conflict.entity).map_err(SyncError::BadInput)?;
        let record_id = RecordId::parse(&conflict.record_id).map_err(SyncError::BadInput)?;
        let (plugin, context) = self.connections.call_context(workspace, &slug).await?;
        let mappings = self.mappings_for(workspace, &plugin, &entity).await?;
        let record = self.store.get_record(workspace, &entity, &record_id).await?;

        // Every synced field ends as: the chosen value where they conflicted, the CRM's where only
        // the CRM changed it, the workspace's otherwise.
        let null = Json::Null;
        let mut merged = Map::new();
        for m in mappings.active() {
            let f = m.app_field.as_str();
            let app = conflict.app_values.get(f).unwrap_or(&null);
            let crm = conflict.crm_values.get(f).unwrap_or(&null);
            let base = conflict.base_values.as_ref().and_then(|b| b.get(f));
            let value = if let Some(v) = chosen.get(f) {
                v.clone()
            } else if m.direction.pulls()
                && base.is_some_and(|b| !same_value(crm, b))
                && base.is_some_and(|b| same_value(app, b))
            {
                crm.clone()
            } else {
                app.clone()
            };
            merged.insert(f.to_owned(), value);
        }

        let crm_id = conflict.crm_id.clone();
        let fields = mappings.outbound(&merged, None).map_err(|(f, e)| SyncError::BadInput(format!("{f}: {e}")))?;
        let sent = [PushRecord { crm_id: crm_id.as_ref().map(|id| id.as_str().to_owned()), fields }];
        let outcome = plugin.push(context, entity.as_str(), &mappings.match_key, &sent).await;
        let crm_id = match outcome {
            Ok(Ok(outcomes)) => match outcomes.into_iter().next() {
                Some(PushOutcome::Created(id) | PushOutcome::Updated(id)) => CrmId::parse(&id).map_err(|e| {
                    SyncError::Crm { kind: "internal", message: format!("the plugin returned an unusable {e}") }
                })?,
                Some(PushOutcome::Failed(err)) => return Err(crm_error(&err)),
                None => {
                    return Err(SyncError::Crm {
                        kind: "internal",
                        message: "the plugin returned no outcome".to_owned(),
                    });
                }
            },
            Ok(Err(err)) => return Err(crm_error(&err)),
            Err(err) => return Err(SyncError::Crm { kind: "plugin_failed", message: err.to_string() }),
        };

        let changes: Map<String, Json> = merged
            .iter()
            .filter(|(k, v)| !same_value(record.fields.get(*k).unwrap_or(&null), v))
            .map(|(k, v)| (k.clone(), coerce_like(v.clone(), record.fields.get(k))))
            .collect();
        let version = if changes.is_empty() {
            record.version
        } else {
            match self
                .store
                .apply_record_changes(workspace, &entity, &record_id, &changes, Some(record.version))
                .await?
            {
                Some(updated) => updated.version,
                None => {
                    return Err(SyncError::Conflict(
                        "the workspace record changed while resolving; the CRM has the resolved values, resolve again or sync".to_owned(),
                    ));
                }
            }
        };
        let write = LinkWrite {
            record_id: record.id.clone(),
            crm_id: Some(crm_id.clone()),
            status: LinkStatus::Synced,
            base: Some(mappings.app_view(&merged)),
            synced_version: Some(version),
            crm_modified_at: None,
            last_error: None,
            synced: true,
        };
        self.store.save_link(workspace, &slug, &entity, &write).await?;
        let written = json!({ "values": chosen, "crm_id": crm_id });
        if !self.store.close_conflict(workspace, conflict_id, ConflictStatus::Resolved, &written, user).await? {
            return Err(SyncError::Conflict("the conflict was closed by someone else meanwhile".to_owned()));
        }
        self.audit(
            workspace,
            user,
            AuditAction::ConflictResolved,
            AuditTarget::Conflict(conflict_id.clone()),
            json!({
                "integration": slug, "entity": entity, "record_id": record.id, "fields": conflict.conflicting_fields,
            }),
        )
        .await;
        Ok(self.store.get_conflict(workspace, conflict_id).await?)
    }

    /// Dismisses a pending conflict without writing anything; the record goes back to `pending`
    /// and the next sync merges it again (a new conflict if the sides still differ).
    pub async fn ignore_conflict(
        &self,
        workspace: &WorkspaceId,
        conflict_id: &ConflictId,
        user: &str,
    ) -> Result<SyncConflict, SyncError> {
        let conflict = self.pending_conflict(workspace, conflict_id).await?;
        let slug = PluginSlug::parse(&conflict.integration).map_err(SyncError::BadInput)?;
        let entity = EntityName::parse(&conflict.entity).map_err(SyncError::BadInput)?;
        if !self
            .store
            .close_conflict(workspace, conflict_id, ConflictStatus::Ignored, &json!({ "ignored": true }), user)
            .await?
        {
            return Err(SyncError::Conflict("the conflict was closed by someone else meanwhile".to_owned()));
        }
        self.store
            .save_link(workspace, &slug, &entity, &LinkWrite::status(&conflict.record_id, LinkStatus::Pending, None))
            .await?;
        self.audit(
            workspace,
            user,
            AuditAction::ConflictIgnored,
            AuditTarget::Conflict(conflict_id.clone()),
            json!({
                "integration": slug, "entity": entity, "record_id": conflict.record_id,
            }),
        )
        .await;
        Ok(self.store.get_conflict(workspace, conflict_id).await?)
    }

    async fn pending_conflict(
        &self,
        workspace: &WorkspaceId,
        conflict_id: &ConflictId,
    ) -> Result<SyncConflict, SyncError> {
        let conflict = self
            .store
            .get_conflict(workspace, conflict_id)
            .await
            .or_not_found(|| SyncError::NotFound(format!("no conflict `{conflict_id}`")))?;
        if conflict.status != ConflictStatus::Pending {
            return Err(SyncError::Conflict(format!("the conflict is already {}", conflict.status)));
        }
        Ok(conflict)
    }
}

fn crm_error(err: &crate::plugins::bindings::AdapterError) -> SyncError {
    let (kind, message) = adapter_error_summary(err);
    let detail = error_json(err);
    tracing::info!(error = %detail, "the CRM refused a conflict resolution");
    SyncError::Crm { kind, message: format!("the CRM refused the resolved values: {message}") }
}
