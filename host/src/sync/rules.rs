//! Field rules: "always use the app" / "always use the CRM" for one field of an entity, kept in
//! the integration's settings (`conflict_rules`) and honoured by every merge; setting one can also
//! settle the pending conflicts it now decides, each resolved (and audited) as a user would.

use serde::Serialize;
use serde_json::json;

use super::merge::{FieldRule, FieldRules};
use super::resolve::{Pick, Resolution};
use super::settings::SyncSettings;
use super::{SyncEngine, SyncError};
use crate::domain::{ConflictId, ConflictStatus, EntityName, FieldName, PluginSlug, WorkspaceId};
use crate::store::{ConflictFilter, StoreResultExt};

/// Most pending conflicts one rule change settles at once (the rest stay for the next change or
/// a user).
const SETTLE_AT_ONCE: i64 = 500;

/// An entity's field rules after a change, and the conflicts it settled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleChange {
    /// The entity.
    #[schema(value_type = String)]
    pub entity: EntityName,
    /// Its rules now, by workspace field.
    #[schema(value_type = BTreeMap<String, FieldRule>)]
    pub rules: FieldRules,
    /// Pending conflicts on the field that the rules now decide, resolved.
    #[schema(value_type = Vec<String>)]
    pub settled: Vec<ConflictId>,
    /// Pending conflicts on the field left for a user: another of their fields has no rule, or
    /// resolving failed (the message says why).
    pub left_pending: Vec<LeftPending>,
}

/// A conflict a rule change did not settle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LeftPending {
    /// The conflict.
    #[schema(value_type = String)]
    pub conflict_id: ConflictId,
    /// Why.
    pub reason: String,
}

impl From<FieldRule> for Pick {
    fn from(rule: FieldRule) -> Self {
        match rule {
            FieldRule::App => Pick::App,
            FieldRule::Crm => Pick::Crm,
        }
    }
}

impl SyncEngine {
    /// Sets (or with `None` removes) the rule of workspace fields of an entity, in one settings
    /// write, audited. A field given a rule must be mapped (a rule left by a mapping since removed
    /// can still be removed).
    pub async fn set_field_rules(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        changes: &[(FieldName, Option<FieldRule>)],
        user: &str,
    ) -> Result<FieldRules, SyncError> {
        let plugin = self.plugin(slug)?;
        let mappings = self.mappings_for(workspace, &plugin, entity).await?;
        let unmapped = |field: &FieldName| !mappings.active().any(|m| m.app_field == *field);
        if let Some((field, _)) = changes.iter().find(|(f, rule)| rule.is_some() && unmapped(f)) {
            let mapped: Vec<&str> = mappings.active().map(|m| m.app_field.as_str()).collect();
            return Err(SyncError::Unprocessable(format!(
                "`{field}` is not a mapped field of `{entity}` (mapped: {})",
                mapped.join(", ")
            )));
        }
        let integration = self.store.get_integration(workspace, slug).await.or_not_found(|| {
            SyncError::Connection(crate::connections::ConnectionError::NotConnected(slug.to_string()))
        })?;
        // The whole map goes through the settings' own patch: validated and audited as any
        // settings change.
        let mut rules = SyncSettings::from_stored(&integration.settings).conflict_rules;
        let entity_rules = rules.entry(entity.clone()).or_default();
        for (field, rule) in changes {
            match rule {
                Some(rule) => entity_rules.insert(field.clone(), *rule),
                None => entity_rules.remove(field),
            };
        }
        rules.retain(|_, entity_rules| !entity_rules.is_empty());
        let (_, now) = self.update_settings(workspace, slug, &json!({ "conflict_rules": rules }), user).await?;
        Ok(now.conflict_rules.get(entity).cloned().unwrap_or_default())
    }

    /// Sets or removes one field's rule; with `apply_to_pending`, resolves the pending conflicts
    /// on that field whose every conflicting field the rules now decide.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_field_rule(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        field: &FieldName,
        rule: Option<FieldRule>,
        apply_to_pending: bool,
        user: &str,
    ) -> Result<RuleChange, SyncError> {
        let rules = self.set_field_rules(workspace, slug, entity, &[(field.clone(), rule)], user).await?;
        let mut change = RuleChange { entity: entity.clone(), rules, settled: Vec::new(), left_pending: Vec::new() };
        if apply_to_pending && rule.is_some() {
            self.settle_by_rules(workspace, slug, field, &mut change, user).await?;
        }
        Ok(change)
    }

    /// Resolves the pending conflicts of the entity on `field` that its rules fully decide.
    pub(super) async fn settle_by_rules(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        field: &FieldName,
        change: &mut RuleChange,
        user: &str,
    ) -> Result<(), SyncError> {
        let filter = ConflictFilter {
            status: Some(ConflictStatus::Pending),
            integration: Some(slug.to_string()),
            entity: Some(change.entity.to_string()),
            limit: SETTLE_AT_ONCE,
            ..ConflictFilter::default()
        };
        let pending = self.store.list_conflicts(workspace, &filter).await?;
        for conflict in pending.iter().filter(|c| c.conflicting_fields.iter().any(|f| f == field.as_str())) {
            let picks: Option<std::collections::BTreeMap<String, Pick>> = conflict
                .conflicting_fields
                .iter()
                .map(|f| {
                    let rule = change.rules.iter().find(|(name, _)| name.as_str() == f).map(|(_, r)| *r)?;
                    Some((f.clone(), Pick::from(rule)))
                })
                .collect();
            let Some(picks) = picks else {
                let reason = "another of its conflicting fields has no rule".to_owned();
                change.left_pending.push(LeftPending { conflict_id: conflict.conflict_id.clone(), reason });
                continue;
            };
            let resolution = Resolution::by_fields(picks);
            match self.resolve_one(workspace, &conflict.conflict_id, &resolution, user).await {
                Ok(_) => change.settled.push(conflict.conflict_id.clone()),
                Err(err) => change
                    .left_pending
                    .push(LeftPending { conflict_id: conflict.conflict_id.clone(), reason: err.to_string() }),
            }
        }
        Ok(())
    }
}
