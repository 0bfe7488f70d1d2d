//! `list-fields`: an sObject's fields from `sobjects/<Object>/describe`, with their types mapped
//! to the contract's and the flags field discovery needs.

use crmhost_sdk::prelude::*;
use serde::Deserialize;

use crate::api::Api;
use crate::objects::sobject;

#[derive(Deserialize)]
struct Describe {
    fields: Vec<DescribeField>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeField {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    createable: bool,
    #[serde(default)]
    updateable: bool,
    #[serde(default = "yes")]
    nillable: bool,
    #[serde(default)]
    defaulted_on_create: bool,
    #[serde(default)]
    external_id: bool,
    #[serde(default)]
    id_lookup: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    picklist_values: Vec<PicklistValue>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct PicklistValue {
    value: String,
    #[serde(default = "yes")]
    active: bool,
}

/// The contract's type for a Salesforce field type.
pub fn field_type(kind: &str) -> FieldType {
    match kind {
        "string" | "encryptedstring" | "combobox" => FieldType::Text,
        "textarea" => FieldType::Textarea,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        "url" => FieldType::Url,
        "int" | "long" => FieldType::Integer,
        "double" => FieldType::Number,
        "currency" => FieldType::Currency,
        "percent" => FieldType::Percent,
        "boolean" => FieldType::Boolean,
        "date" => FieldType::Date,
        "datetime" => FieldType::DateTime,
        "picklist" => FieldType::Picklist,
        "multipicklist" => FieldType::MultiPicklist,
        "reference" => FieldType::Reference,
        "id" => FieldType::Id,
        _ => FieldType::Other,
    }
}

/// The fields of an entity.
pub fn list_fields(entity: &str) -> Result<Vec<FieldInfo>> {
    let api = Api::from_connection()?;
    let object = sobject(entity)?;
    let describe: Describe = api.get_json(api.url(&format!("/sobjects/{object}/describe")), "describing the object")?;
    Ok(describe
        .fields
        .into_iter()
        .map(|f| FieldInfo {
            required: f.createable && !f.nillable && !f.defaulted_on_create,
            writable: f.createable || f.updateable,
            // Email is idLookup but not unique: usable as a match key, with ambiguity handled in push.
            unique: f.unique || f.external_id || f.id_lookup,
            options: f.picklist_values.into_iter().filter(|p| p.active).map(|p| p.value).collect(),
            field_type: field_type(&f.kind),
            name: f.name,
            label: f.label,
        })
        .collect())
}
