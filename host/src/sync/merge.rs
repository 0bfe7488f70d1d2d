//! The three-way merge of one record: the workspace's values and the CRM's, each compared with the
//! base both sides agreed on at the last sync, field by field. Only-app changes go to the CRM,
//! only-CRM changes come to the workspace, equal changes agree, and different changes are a
//! conflict the integration's strategy settles (or leaves for a user), unless a field rule says
//! which side always wins that field. Pure: no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::mapping::EntityMappings;
use super::values::same_value;
use crate::domain::FieldName;

/// How a conflict is settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// The side changed last wins (workspace `updated_at` against the CRM's modification time).
    #[default]
    LastWriteWins,
    /// The CRM's value wins.
    CrmWins,
    /// The workspace's value wins.
    AppWins,
    /// Nothing is overwritten; a conflict waits for a user.
    ManualReview,
}

/// Which side always wins a conflict on one field ("always use the app" / "always use the
/// CRM"), whatever the integration's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// The workspace's value wins.
    App,
    /// The CRM's value wins.
    Crm,
}

/// One entity's field rules, by workspace field.
pub type FieldRules = BTreeMap<FieldName, FieldRule>;

/// How each field's conflicts are settled: the integration's strategy, unless a rule names the
/// field.
#[derive(Debug, Clone, Copy)]
pub struct Strategies<'a> {
    /// The integration's strategy.
    pub default: ConflictStrategy,
    /// The entity's field rules.
    pub rules: Option<&'a FieldRules>,
}

impl From<ConflictStrategy> for Strategies<'_> {
    fn from(default: ConflictStrategy) -> Self {
        Self { default, rules: None }
    }
}

impl Strategies<'_> {
    /// The strategy for one workspace field.
    pub fn for_field(&self, field: &str) -> ConflictStrategy {
        let rule = self.rules.and_then(|rules| rules.iter().find(|(f, _)| f.as_str() == field).map(|(_, r)| *r));
        match rule {
            Some(FieldRule::App) => ConflictStrategy::AppWins,
            Some(FieldRule::Crm) => ConflictStrategy::CrmWins,
            None => self.default,
        }
    }
}

/// One side of a record at merge time.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Values by workspace field (see [`EntityMappings::app_view`] / [`EntityMappings::crm_view`]).
    pub values: &'a Map<String, Json>,
    /// When this side last changed, if known.
    pub changed_at: Option<DateTime<Utc>>,
}

/// What to do with one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeOutcome {
    /// Values to write into the workspace record, by workspace field.
    pub to_app: Map<String, Json>,
    /// Workspace fields whose values go to the CRM.
    pub to_crm: Vec<String>,
    /// Fields changed differently on both sides and left for a user (`manual_review`). When
    /// there are any, nothing else is applied either: the record waits as a whole.
    pub conflicts: Vec<String>,
    /// Fields the strategy settled.
    pub settled: Vec<String>,
    /// The new base for every field both sides now agree on (fields still to be pushed keep
    /// their old base until the push succeeds).
    pub base: Map<String, Json>,
}

/// Merges one record. `base` is `None` for a pair never synced before: then a side that has no
/// value has not "changed" it, and only two different values conflict.
pub fn merge<'r>(
    mappings: &EntityMappings,
    app: Side<'_>,
    crm: Side<'_>,
    base: Option<&Map<String, Json>>,
    strategies: impl Into<Strategies<'r>>,
) -> MergeOutcome {
    let strategies = strategies.into();
    let mut out = MergeOutcome::default();
    let null = Json::Null;
    for m in mappings.active() {
        let field = m.app_field.as_str();
        let a = app.values.get(field).unwrap_or(&null);
        let c = crm.values.get(field).unwrap_or(&null);
        let b = base.and_then(|b| b.get(field));
        let keep_base = |out: &mut MergeOutcome| {
            if let Some(b) = b {
                out.base.insert(field.to_owned(), b.clone());
            }
        };
        let (pushes, pulls) = (m.direction.pushes(), m.direction.pulls());
        // A field the two sides never agreed on (a first link, or a base written before the field
        // was settled) has no base value: a side "changed" it only by holding a value, so a value
        // on one side and nothing on the other is a gap to fill, never a conflict.
        let changed = |value: &Json| match b {
            Some(b) => !same_value(value, b),
            None => !same_value(value, &null),
        };
        let app_changed = pushes && changed(a);
        let crm_changed = pulls && changed(c);
        match (app_changed, crm_changed) {
            (false, false) => {
                match b {
                    Some(b) => out.base.insert(field.to_owned(), b.clone()),
                    None => out.base.insert(field.to_owned(), if pulls { c.clone() } else { a.clone() }),
                };
            }
            (true, false) => {
                out.to_crm.push(field.to_owned());
                keep_base(&mut out);
            }
            (false, true) => {
                if !same_value(a, c) {
                    out.to_app.insert(field.to_owned(), c.clone());
                }
                out.base.insert(field.to_owned(), c.clone());
            }
            (true, true) if same_value(a, c) => {
                out.base.insert(field.to_owned(), c.clone());
            }
            (true, true) => {
                let crm_wins = match strategies.for_field(field) {
                    ConflictStrategy::CrmWins => true,
                    ConflictStrategy::AppWins => false,
                    ConflictStrategy::LastWriteWins => match (app.changed_at, crm.changed_at) {
                        (Some(a), Some(c)) => c > a,
                        // Without a CRM time the workspace's known change wins.
                        _ => false,
                    },
                    ConflictStrategy::ManualReview => {
                        out.conflicts.push(field.to_owned());
                        keep_base(&mut out);
                        continue;
                    }
                };
                out.settled.push(field.to_owned());
                if crm_wins {
                    out.to_app.insert(field.to_owned(), c.clone());
                    out.base.insert(field.to_owned(), c.clone());
                } else {
                    out.to_crm.push(field.to_owned());
                    keep_base(&mut out);
                }
            }
        }
    }
    if !out.conflicts.is_empty() {
        out.to_app.clear();
        out.to_crm.clear();
        out.settled.clear();
        out.base = base.cloned().unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{EntityName, FieldName};
    use crate::sync::mapping::{Direction, FieldMapping, MappingSource};

    fn mappings() -> EntityMappings {
        let m = |app: &str, crm: &str, direction| FieldMapping {
            app_field: FieldName::parse(app).unwrap(),
            crm_field: crm.to_owned(),
            direction,
            transform: None,
            references: None,
        };
        EntityMappings {
            entity: EntityName::parse("contact").unwrap(),
            match_key: "Email".to_owned(),
            source: MappingSource::Default,
            mappings: vec![
                m("email", "Email", Direction::Both),
                m("name", "Name", Direction::Both),
                m("phone", "Phone", Direction::Both),
                m("status", "Status", Direction::Pull),
                m("note", "Note", Direction::Push),
            ],
        }
    }

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    fn run(
        app: Json,
        crm: Json,
        base: Option<Json>,
        strategy: ConflictStrategy,
        app_at: &str,
        crm_at: &str,
    ) -> MergeOutcome {
        let (app, crm, base) = (obj(app), obj(crm), base.map(obj));
        merge(
            &mappings(),
            Side { values: &app, changed_at: at(app_at) },
            Side { values: &crm, changed_at: at(crm_at) },
            base.as_ref(),
            strategy,
        )
    }

    const T1: &str = "2026-01-01T00:00:00Z";
    const T2: &str = "2026-01-02T00:00:00Z";

    fn base() -> Json {
        json!({"email": "a@x.com", "name": "Ann", "phone": "1", "status": "open", "note": "n"})
    }

    #[test]
    fn one_sided_changes_flow_to_the_other_side() {
        let out = run(
            json!({"email": "a@x.com", "name": "Anna", "phone": "1", "status": "open", "note": "n2"}),
            json!({"email": "a@x.com", "name": "Ann", "phone": "2", "status": "won"}),
            Some(base()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert_eq!(out.to_crm, ["name", "note"]);
        assert_eq!(out.to_app, obj(json!({"phone": "2", "status": "won"})));
        assert!(out.conflicts.is_empty());
        assert_eq!(out.base["phone"], json!("2"));
        assert_eq!(out.base["name"], json!("Ann"), "a field still to push keeps its old base");
    }

    #[test]
    fn equal_changes_on_both_sides_are_not_a_conflict() {
        let out = run(
            json!({"email": "a@x.com", "name": "Bob", "phone": "1", "note": "n"}),
            json!({"email": "a@x.com", "name": "Bob", "phone": "1", "status": "open"}),
            Some(base()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert!(out.to_crm.is_empty() && out.to_app.is_empty() && out.conflicts.is_empty(), "{out:?}");
        assert_eq!(out.base["name"], json!("Bob"));
    }

    #[test]
    fn a_field_rule_overrides_the_strategy_for_its_field_only() {
        let app = obj(json!({"email": "a@x.com", "name": "App", "phone": "9", "note": "n"}));
        let crm = obj(json!({"email": "a@x.com", "name": "Crm", "phone": "8", "status": "open"}));
        let base = obj(base());
        let merged = |rules: &[(&str, FieldRule)]| {
            let rules: FieldRules = rules.iter().map(|(f, r)| (FieldName::parse(f).unwrap(), *r)).collect();
            merge(
                &mappings(),
                Side { values: &app, changed_at: at(T2) },
                Side { values: &crm, changed_at: at(T1) },
                Some(&base),
                Strategies { default: ConflictStrategy::ManualReview, rules: Some(&rules) },
            )
        };
        // `phone` has no rule: manual review holds the whole record back.
        assert_eq!(merged(&[("name", FieldRule::Crm)]).conflicts, ["phone"]);
        let out = merged(&[("name", FieldRule::Crm), ("phone", FieldRule::App)]);
        assert!(out.conflicts.is_empty(), "{out:?}");
        assert_eq!(out.to_app, obj(json!({"name": "Crm"})), "the CRM wins `name` although the app changed last");
        assert_eq!(out.to_crm, ["phone"]);
    }

    #[test]
    fn each_strategy_settles_a_real_conflict_its_way() {
        let app = json!({"email": "a@x.com", "name": "App", "phone": "1", "note": "n"});
        let crm = json!({"email": "a@x.com", "name": "Crm", "phone": "1", "status": "open"});
        let crm_wins = run(app.clone(), crm.clone(), Some(base()), ConflictStrategy::CrmWins, T2, T1);
        assert_eq!(crm_wins.to_app, obj(json!({"name": "Crm"})));
        let app_wins = run(app.clone(), crm.clone(), Some(base()), ConflictStrategy::AppWins, T1, T2);
        assert_eq!(app_wins.to_crm, ["name"]);
        let newer_crm = run(app.clone(), crm.clone(), Some(base()), ConflictStrategy::LastWriteWins, T1, T2);
        assert_eq!(newer_crm.to_app, obj(json!({"name": "Crm"})));
        let newer_app = run(app.clone(), crm.clone(), Some(base()), ConflictStrategy::LastWriteWins, T2, T1);
        assert_eq!(newer_app.to_crm, ["name"]);
        assert_eq!(newer_app.settled, ["name"]);
        let manual = run(app, crm, Some(base()), ConflictStrategy::ManualReview, T1, T2);
        assert_eq!(manual.conflicts, ["name"]);
        assert!(manual.to_app.is_empty() && manual.to_crm.is_empty(), "nothing is overwritten");
    }

    #[test]
    fn manual_review_holds_the_whole_record() {
        let out = run(
            json!({"email": "a@x.com", "name": "App", "phone": "1", "note": "changed"}),
            json!({"email": "a@x.com", "name": "Crm", "phone": "9", "status": "open"}),
            Some(base()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert_eq!(out.conflicts, ["name"]);
        assert!(out.to_app.is_empty() && out.to_crm.is_empty());
        assert_eq!(out.base, obj(base()));
    }

    #[test]
    fn a_first_link_fills_gaps_from_either_side_and_conflicts_only_on_two_values() {
        let out = run(
            json!({"email": "a@x.com", "name": "Ann", "note": "n"}),
            json!({"email": "a@x.com", "phone": "5", "name": "Annie"}),
            None,
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert_eq!(out.conflicts, ["name"]);
        let out = run(
            json!({"email": "a@x.com", "name": "Ann", "note": "n"}),
            json!({"email": "a@x.com", "phone": "5", "name": "Ann"}),
            None,
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert_eq!(out.to_app, obj(json!({"phone": "5"})));
        assert_eq!(out.to_crm, ["note"]);
    }

    #[test]
    fn a_field_missing_from_the_base_is_a_gap_to_fill_not_a_conflict() {
        // The base of a first link lacks the fields still to be pushed (here `note`, `name`).
        let partial_base = json!({"email": "a@x.com", "phone": "1", "status": "open"});
        let out = run(
            json!({"email": "a@x.com", "name": "Ann", "phone": "1", "note": "Buyer"}),
            json!({"email": "a@x.com", "phone": "1", "status": "open", "name": ""}),
            Some(partial_base.clone()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert!(out.conflicts.is_empty(), "{out:?}");
        assert_eq!(out.to_crm, ["name", "note"]);
        let out = run(
            json!({"email": "a@x.com", "phone": "1"}),
            json!({"email": "a@x.com", "phone": "1", "status": "open", "name": "Crm"}),
            Some(partial_base.clone()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert!(out.conflicts.is_empty(), "{out:?}");
        assert_eq!(out.to_app, obj(json!({"name": "Crm"})));
        // Two different values still conflict.
        let out = run(
            json!({"email": "a@x.com", "phone": "1", "name": "App"}),
            json!({"email": "a@x.com", "phone": "1", "status": "open", "name": "Crm"}),
            Some(partial_base),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert_eq!(out.conflicts, ["name"]);
    }

    #[test]
    fn direction_limits_what_each_side_may_change() {
        // The CRM changing a push-only field, or the app changing a pull-only one, is not a change.
        let out = run(
            json!({"email": "a@x.com", "name": "Ann", "phone": "1", "status": "mine", "note": "n"}),
            json!({"email": "a@x.com", "name": "Ann", "phone": "1", "status": "open", "note": "theirs"}),
            Some(base()),
            ConflictStrategy::ManualReview,
            T1,
            T2,
        );
        assert!(out.to_crm.is_empty() && out.to_app.is_empty(), "{out:?}");
    }
}
