//! Field-mapping assistance: suggesting mappings between a workspace's fields and the CRM's
//! (`suggest`), and showing what a set of mappings would do to real records on both sides without
//! writing anything (`preview`).
//!
//! Suggestions score each pair of fields by evidence, strongest first: the plugin's default
//! mapping, the same normalized name (`first_name` ↔ `FirstName` ↔ `firstname`), the same label,
//! a common synonym (company ↔ account name, phone ↔ mobile, zip ↔ postal code, website ↔ domain),
//! one name containing the other. A pair whose types cannot hold each other's values, or whose CRM
//! field cannot be written, is never suggested; each CRM field is suggested once, to the workspace
//! field with the strongest evidence.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::mapping::{Direction, EntityMappings};
use super::values::fields_by_name;
use super::{SyncEngine, SyncError};
use crate::domain::{EntityName, PluginSlug, WorkspaceId};
use crate::plugins::adapter_error_summary;
use crate::plugins::bindings::adapter::{FieldInfo, FieldType, PullRequest};
use crate::plugins::description::EntityDescription;
use crate::store::{RecordQuery, StoredRecord};

/// Most workspace records read to learn the workspace's fields and their types.
const FIELD_SAMPLE: i64 = 200;
/// Most records a preview shows per side.
pub const PREVIEW_SAMPLE_MAX: u32 = 20;

/// Groups of names that mean the same thing in CRMs and apps (normalized: lower-case letters and
/// digits only).
const SYNONYMS: &[&[&str]] = &[
    &["company", "companyname", "account", "accountname", "organization", "organisation", "employer", "business"],
    &["phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell", "cellphone"],
    &["zip", "zipcode", "postalcode", "postcode", "mailingpostalcode", "postal"],
    &["website", "domain", "url", "web", "homepage", "companydomainname"],
    &["title", "jobtitle", "position", "role"],
    &["lastname", "surname", "familyname"],
    &["firstname", "givenname", "forename"],
    &["email", "emailaddress", "mail"],
    &["city", "town", "mailingcity"],
    &["country", "mailingcountry"],
    &["employees", "numberofemployees", "headcount", "staff"],
    &["amount", "value", "dealvalue"],
    &["stage", "dealstage", "stagename"],
    &["closedate", "closingdate", "expectedclose"],
    &["name", "dealname", "fullname"],
];

/// One suggested mapping.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// The workspace field.
    pub app_field: String,
    /// The CRM field.
    pub crm_field: String,
    /// The CRM field's label.
    pub crm_label: String,
    /// The suggested direction.
    pub direction: Direction,
    /// A suggested transform (the plugin default's, if any): a name such as `lowercase`, or an
    /// object for value maps and date formats.
    #[schema(value_type = Option<serde_json::Value>)]
    pub transform: Option<Json>,
    /// How sure the match is, 0 to 1.
    pub confidence: f64,
    /// Why it was suggested.
    pub reason: String,
}

/// A CRM field.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CrmFieldRef {
    /// Its name.
    pub name: String,
    /// Its label.
    pub label: String,
}

/// Suggested mappings for an entity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MappingSuggestions {
    /// The entity.
    #[schema(value_type = String)]
    pub entity: EntityName,
    /// The CRM field records are matched on.
    pub match_key: String,
    /// Suggestions, strongest first.
    pub suggestions: Vec<Suggestion>,
    /// Workspace fields nothing was found for.
    pub unmatched_app_fields: Vec<String>,
    /// CRM fields a created record needs that no suggestion fills.
    pub required_unmapped: Vec<CrmFieldRef>,
}

/// What a preview found wrong with one field of one record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PreviewFlag {
    /// The field: a workspace field on rows from the CRM, a CRM field on rows to it.
    pub field: String,
    /// What kind of problem.
    pub kind: FlagKind,
    /// In words.
    pub message: String,
}

/// The kinds of problems a preview flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A transform could not convert the value.
    TransformFailed,
    /// The value's type is not what the other side holds there.
    TypeMismatch,
    /// A picklist value the CRM does not offer (it would refuse the record).
    NotAnOption,
    /// A field the CRM requires to create a record is missing.
    RequiredMissing,
}

/// One record as it would land on the other side.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewRow {
    /// The record on its own side: a CRM id (rows from the CRM) or a workspace record id.
    pub id: String,
    /// The values it would be written with, by the other side's field names.
    #[schema(value_type = Object)]
    pub values: Map<String, Json>,
    /// Problems, per field.
    pub flags: Vec<PreviewFlag>,
}

/// What a set of mappings would do, on real records, with nothing written.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MappingPreview {
    /// The entity.
    #[schema(value_type = String)]
    pub entity: EntityName,
    /// CRM records (read through the plugin) as they would land in workspace fields.
    pub from_crm: Vec<PreviewRow>,
    /// Workspace records as they would be sent to the CRM.
    pub to_crm: Vec<PreviewRow>,
    /// CRM fields a created record needs that the mappings do not send.
    pub required_unmapped: Vec<CrmFieldRef>,
}

/// The value types a workspace field was seen holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Text,
    Number,
    Boolean,
    Date,
    List,
    Object,
}

fn seen_type(value: &Json) -> Option<Seen> {
    match value {
        Json::Null => None,
        Json::Bool(_) => Some(Seen::Boolean),
        Json::Number(_) => Some(Seen::Number),
        Json::String(s) if super::values::parse_instant(s).is_some() => Some(Seen::Date),
        Json::String(_) => Some(Seen::Text),
        Json::Array(_) => Some(Seen::List),
        Json::Object(_) => Some(Seen::Object),
    }
}

/// Whether a CRM field of `crm` can hold values of every type in `seen` (nothing seen: yes).
fn compatible(crm: &FieldType, seen: &BTreeSet<Seen>) -> bool {
    seen.iter().all(|s| match crm {
        FieldType::Reference | FieldType::Id => false,
        FieldType::Integer | FieldType::Number | FieldType::Currency | FieldType::Percent => *s == Seen::Number,
        FieldType::Boolean => *s == Seen::Boolean,
        FieldType::Date | FieldType::DateTime => *s == Seen::Date,
        FieldType::MultiPicklist => matches!(s, Seen::Text | Seen::List),
        FieldType::Text
        | FieldType::Textarea
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Picklist
        | FieldType::Other => matches!(s, Seen::Text | Seen::Number | Seen::Date),
    })
}

/// Lower-case letters and digits only: `first_name`, `FirstName` and `First Name` agree.
fn normalized(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn synonym_group(name: &str) -> Option<usize> {
    SYNONYMS.iter().position(|group| group.contains(&name))
}

/// The evidence that a workspace field and a CRM field are the same, as (confidence, reason).
fn evidence(app_field: &str, crm: &FieldInfo) -> Option<(f64, String)> {
    let (app, name, label) = (normalized(app_field), normalized(&crm.name), normalized(&crm.label));
    if app.is_empty() {
        return None;
    }
    if app == name {
        return Some((0.95, format!("same name as `{}`", crm.name)));
    }
    if app == label {
        return Some((0.9, format!("same name as the label \"{}\"", crm.label)));
    }
    if let Some(group) = synonym_group(&app)
        && (synonym_group(&name) == Some(group) || synonym_group(&label) == Some(group))
    {
        // Among synonyms, one whose name also contains the workspace's (mobile → MobilePhone
        // rather than Phone) is the closer.
        let closer = if name.contains(&app) { 0.05 } else { 0.0 };
        return Some((0.75 + closer, format!("`{app_field}` and \"{}\" usually mean the same", crm.label)));
    }
    let shorter = app.len().min(name.len());
    if shorter >= 4 && (name.contains(&app) || app.contains(&name)) {
        return Some((0.6, format!("`{app_field}` and `{}` share most of their name", crm.name)));
    }
    None
}

/// What the workspace holds in one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AppField {
    /// The value types seen in its records.
    seen: BTreeSet<Seen>,
    /// Whether any sampled record has it (otherwise it comes from the plugin's defaults).
    in_records: bool,
}

/// The workspace's fields of an entity: from a sample of its records, plus the plugin's default
/// mappings' fields.
fn workspace_fields(records: &[StoredRecord], described: &EntityDescription) -> BTreeMap<String, AppField> {
    let mut fields: BTreeMap<String, AppField> = BTreeMap::new();
    for record in records {
        for (name, value) in &record.fields {
            let field = fields.entry(name.clone()).or_default();
            field.in_records = true;
            field.seen.extend(seen_type(value));
        }
    }
    for default in &described.default_mappings {
        fields.entry(default.app_field.clone()).or_default();
    }
    fields
}

/// Scores every (workspace field, CRM field) pair and keeps the strongest per field on each side.
fn suggest_for(
    app_fields: &BTreeMap<String, AppField>,
    crm_fields: &[FieldInfo],
    described: &EntityDescription,
) -> Vec<Suggestion> {
    // A default for a field the workspace's records do not have is a weak hint when they have
    // others: a field the workspace does use may claim that CRM field.
    let has_records = app_fields.values().any(|f| f.in_records);
    let mut candidates = Vec::new();
    for (app_field, field) in app_fields {
        for crm in crm_fields.iter().filter(|f| f.writable && compatible(&f.field_type, &field.seen)) {
            let default = described
                .default_mappings
                .iter()
                .find(|d| d.app_field == *app_field && d.crm_field.eq_ignore_ascii_case(&crm.name));
            let (confidence, reason, direction, transform) = match default {
                Some(d) if field.in_records || !has_records => (
                    1.0,
                    "the plugin's default mapping".to_owned(),
                    Direction::parse(d.direction).unwrap_or(Direction::Both),
                    d.transform.clone().map(Json::String),
                ),
                Some(d) => (
                    0.5,
                    "the plugin's default mapping (no workspace record has this field yet)".to_owned(),
                    Direction::parse(d.direction).unwrap_or(Direction::Both),
                    d.transform.clone().map(Json::String),
                ),
                None => match evidence(app_field, crm) {
                    Some((confidence, reason)) => (confidence, reason, Direction::Both, None),
                    None => continue,
                },
            };
            candidates.push(Suggestion {
                app_field: app_field.clone(),
                crm_field: crm.name.clone(),
                crm_label: crm.label.clone(),
                direction,
                transform,
                confidence,
                reason,
            });
        }
    }
    // Strongest first; ties by name, so the answer is stable.
    candidates.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.app_field.cmp(&b.app_field))
            .then(a.crm_field.cmp(&b.crm_field))
    });
    let (mut app_taken, mut crm_taken) = (BTreeSet::new(), BTreeSet::new());
    candidates
        .into_iter()
        .filter(|s| {
            let fresh = !app_taken.contains(&s.app_field) && !crm_taken.contains(&s.crm_field.to_ascii_lowercase());
            if fresh {
                app_taken.insert(s.app_field.clone());
                crm_taken.insert(s.crm_field.to_ascii_lowercase());
            }
            fresh
        })
        .collect()
}

/// CRM fields required on create (and writable) that none of `mapped` fills.
fn required_unmapped<'a>(crm_fields: &[FieldInfo], mapped: impl Iterator<Item = &'a str>) -> Vec<CrmFieldRef> {
    let mapped: BTreeSet<String> = mapped.map(str::to_ascii_lowercase).collect();
    crm_fields
        .iter()
        .filter(|f| f.required && f.writable && !mapped.contains(&f.name.to_ascii_lowercase()))
        .map(|f| CrmFieldRef { name: f.name.clone(), label: f.label.clone() })
        .collect()
}

/// Problems with one value about to be sent to a CRM field.
fn outbound_flags(field: &FieldInfo, value: &Json) -> Vec<PreviewFlag> {
    let mut flags = Vec::new();
    if let Some(seen) = seen_type(value)
        && !compatible(&field.field_type, &BTreeSet::from([seen]))
    {
        flags.push(PreviewFlag {
            field: field.name.clone(),
            kind: FlagKind::TypeMismatch,
            message: format!("{} holds {:?} values; this is {value}", field.label, field.field_type).to_lowercase(),
        });
    }
    if matches!(field.field_type, FieldType::Picklist)
        && !field.options.is_empty()
        && let Some(text) = value.as_str()
        && !field.options.iter().any(|o| o == text)
    {
        flags.push(PreviewFlag {
            field: field.name.clone(),
            kind: FlagKind::NotAnOption,
            message: format!("\"{text}\" is not one of {}'s values ({})", field.label, field.options.join(", ")),
        });
    }
    flags
}

impl SyncEngine {
    /// Suggests mappings for an entity between the workspace's fields and the CRM's.
    #[tracing::instrument(name = "sync.suggest_mappings", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn suggest_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> Result<MappingSuggestions, SyncError> {
        let plugin = self.plugin(slug)?;
        let described = Self::entity_description(plugin.description(), entity)?;
        let crm_fields = self.list_fields(workspace, slug, entity).await?;
        let sample = self.sample_records(workspace, entity, FIELD_SAMPLE).await?;
        let app_fields = workspace_fields(&sample, &described);
        let suggestions = suggest_for(&app_fields, &crm_fields, &described);
        let unmatched_app_fields =
            app_fields.keys().filter(|f| !suggestions.iter().any(|s| s.app_field == **f)).cloned().collect();
        let required_unmapped = required_unmapped(&crm_fields, suggestions.iter().map(|s| s.crm_field.as_str()));
        Ok(MappingSuggestions {
            entity: entity.clone(),
            match_key: described.match_keys.first().cloned().unwrap_or_default(),
            suggestions,
            unmatched_app_fields,
            required_unmapped,
        })
    }

    /// Shows what `mappings` would do: up to `sample` CRM records (read through the plugin) as
    /// they would land in the workspace, and as many workspace records as they would be sent,
    /// each with its problems. Nothing is written on either side.
    #[tracing::instrument(name = "sync.preview_mappings", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn preview_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        mappings: &EntityMappings,
        sample: u32,
    ) -> Result<MappingPreview, SyncError> {
        let sample = sample.clamp(1, PREVIEW_SAMPLE_MAX);
        let crm_fields = self.list_fields(workspace, slug, entity).await?;
        let records = self.sample_records(workspace, entity, i64::from(sample)).await?;
        let app_types =
            workspace_fields(&records, &Self::entity_description(self.plugin(slug)?.description(), entity)?);
        let from_crm = self.preview_from_crm(workspace, slug, mappings, &app_types, sample).await?;
        let to_crm = records.iter().map(|r| preview_to_crm(mappings, &crm_fields, r)).collect();
        let sent = mappings.active().filter(|m| m.direction.pushes()).map(|m| m.crm_field.as_str());
        Ok(MappingPreview {
            entity: entity.clone(),
            from_crm,
            to_crm,
            required_unmapped: required_unmapped(&crm_fields, sent),
        })
    }

    /// A few live workspace records of an entity.
    async fn sample_records(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, SyncError> {
        let query = RecordQuery { limit, ..RecordQuery::default() };
        Ok(self.store.list_records(workspace, entity, &query).await?)
    }

    /// Reads a page of CRM records through the plugin and maps each into workspace fields.
    async fn preview_from_crm(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        mappings: &EntityMappings,
        app_types: &BTreeMap<String, AppField>,
        sample: u32,
    ) -> Result<Vec<PreviewRow>, SyncError> {
        let (plugin, context) = self.connections.call_context(workspace, slug).await?;
        let request = PullRequest {
            entity: mappings.entity.to_string(),
            cursor: None,
            modified_since: None,
            ids: Vec::new(),
            fields: mappings.pull_fields(),
            limit: sample,
        };
        let page = match plugin.pull(context, &request).await {
            Ok(Ok(page)) => page,
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                return Err(SyncError::Crm { kind, message: format!("the CRM could not list records: {message}") });
            }
            Err(err) => return Err(SyncError::Crm { kind: "plugin_failed", message: err.to_string() }),
        };
        let rows = page.records.iter().take(sample as usize).map(|record| {
            let values = mappings.crm_view(&fields_by_name(&record.fields));
            let flags = values
                .iter()
                .filter_map(|(field, value)| {
                    let held = app_types.get(field).map(|f| &f.seen).filter(|seen| !seen.is_empty())?;
                    let incoming = seen_type(value)?;
                    (!held.contains(&incoming)).then(|| PreviewFlag {
                        field: field.clone(),
                        kind: FlagKind::TypeMismatch,
                        message: format!("the workspace holds {held:?} in `{field}`; the CRM sends {value}")
                            .to_lowercase(),
                    })
                })
                .collect();
            PreviewRow { id: record.id.clone(), values, flags }
        });
        Ok(rows.collect())
    }
}

/// One workspace record as the mappings would send it, with its problems.
fn preview_to_crm(mappings: &EntityMappings, crm_fields: &[FieldInfo], record: &StoredRecord) -> PreviewRow {
    let mut values = Map::new();
    let mut flags = Vec::new();
    for m in mappings.active().filter(|m| m.direction.pushes()) {
        let Some(value) = record.fields.get(m.app_field.as_str()) else { continue };
        let sent = match &m.transform {
            Some(t) => match t.outbound(value) {
                Ok(sent) => sent,
                Err(message) => {
                    flags.push(PreviewFlag { field: m.crm_field.clone(), kind: FlagKind::TransformFailed, message });
                    continue;
                }
            },
            None => value.clone(),
        };
        if let Some(field) = crm_fields.iter().find(|f| f.name.eq_ignore_ascii_case(&m.crm_field)) {
            flags.extend(outbound_flags(field, &sent));
        }
        values.insert(m.crm_field.clone(), sent);
    }
    for missing in crm_fields.iter().filter(|f| f.required && f.writable) {
        let filled = values.iter().any(|(k, v)| k.eq_ignore_ascii_case(&missing.name) && !v.is_null());
        if !filled {
            flags.push(PreviewFlag {
                field: missing.name.clone(),
                kind: FlagKind::RequiredMissing,
                message: format!("{} is required to create a record in the CRM", missing.label),
            });
        }
    }
    PreviewRow { id: record.id.clone(), values, flags }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crm(name: &str, label: &str, field_type: FieldType, writable: bool) -> FieldInfo {
        FieldInfo {
            name: name.to_owned(),
            label: label.to_owned(),
            field_type,
            required: false,
            writable,
            unique: false,
            options: Vec::new(),
        }
    }

    fn described() -> EntityDescription {
        EntityDescription {
            name: "contact".to_owned(),
            label: "Contact".to_owned(),
            crm_name: "Contact".to_owned(),
            match_keys: vec!["Email".to_owned()],
            default_mappings: Vec::new(),
        }
    }

    #[test]
    fn names_labels_and_synonyms_match_and_read_only_or_incompatible_fields_never_do() {
        let crm_fields = vec![
            crm("FirstName", "First Name", FieldType::Text, true),
            crm("LastName", "Last Name", FieldType::Text, true),
            crm("MobilePhone", "Mobile Phone", FieldType::Phone, true),
            crm("company", "Company Name", FieldType::Text, true),
            crm("Birthdate", "Birthdate", FieldType::Date, true),
            crm("LastModifiedDate", "Last Modified Date", FieldType::DateTime, false),
            crm("NumberOfEmployees", "Employees", FieldType::Integer, true),
        ];
        let seen = |types: &[Seen]| AppField { seen: types.iter().copied().collect(), in_records: true };
        let app: BTreeMap<String, AppField> = [
            ("first_name", seen(&[Seen::Text])),
            ("surname", seen(&[Seen::Text])),
            ("mobile", seen(&[Seen::Text])),
            ("company_name", seen(&[Seen::Text])),
            ("birthdate", seen(&[Seen::Text])),
            ("last_modified_date", seen(&[Seen::Date])),
            ("employees", seen(&[Seen::Text])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let got: BTreeMap<String, String> =
            suggest_for(&app, &crm_fields, &described()).into_iter().map(|s| (s.app_field, s.crm_field)).collect();
        assert_eq!(got.get("first_name").map(String::as_str), Some("FirstName"));
        assert_eq!(got.get("surname").map(String::as_str), Some("LastName"));
        assert_eq!(got.get("mobile").map(String::as_str), Some("MobilePhone"));
        assert_eq!(got.get("company_name").map(String::as_str), Some("company"));
        assert_eq!(got.get("birthdate"), None, "text values never go to a date field");
        assert_eq!(got.get("last_modified_date"), None, "a read-only field is never a target");
        assert_eq!(got.get("employees"), None, "text values never go to a number field");
    }

    #[test]
    fn a_picklist_value_outside_the_options_and_a_wrong_type_are_flagged() {
        let mut stage = crm("StageName", "Stage", FieldType::Picklist, true);
        stage.options = vec!["Prospecting".to_owned(), "Closed Won".to_owned()];
        assert!(outbound_flags(&stage, &Json::from("Prospecting")).is_empty());
        let flags = outbound_flags(&stage, &Json::from("Won"));
        assert_eq!(flags.iter().map(|f| f.kind).collect::<Vec<_>>(), [FlagKind::NotAnOption]);
        let amount = crm("Amount", "Amount", FieldType::Currency, true);
        assert_eq!(outbound_flags(&amount, &Json::from("lots"))[0].kind, FlagKind::TypeMismatch);
        assert!(outbound_flags(&amount, &Json::from(12.5)).is_empty());
    }
}
