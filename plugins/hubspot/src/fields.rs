//! `list-fields`: an object's properties from the properties API (`readOnlyValue` → not
//! writable, `hasUniqueValue` → match key; `email` on contacts is unique for upserts), and the
//! association fields (`associations.company`).

use crmhost_sdk::prelude::*;
use serde::Deserialize;

use crate::api;
use crate::objects::object;

#[derive(Deserialize)]
struct Properties {
    results: Vec<Property>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Property {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    field_type: String,
    #[serde(default)]
    has_unique_value: bool,
    #[serde(default)]
    modification_metadata: Option<Modification>,
    #[serde(default)]
    options: Vec<PropertyOption>,
    #[serde(default)]
    calculated: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Modification {
    #[serde(default)]
    read_only_value: bool,
}

#[derive(Deserialize)]
struct PropertyOption {
    value: String,
    #[serde(default)]
    hidden: bool,
}

fn field_type(kind: &str, field_type: &str, name: &str) -> FieldType {
    match (kind, field_type) {
        _ if name == "hs_object_id" => FieldType::Id,
        _ if name == "email" => FieldType::Email,
        ("string", "textarea") => FieldType::Textarea,
        ("string", _) => FieldType::Text,
        ("phone_number", _) => FieldType::Phone,
        ("number", _) if name == "amount" => FieldType::Currency,
        ("number", _) => FieldType::Number,
        ("bool", _) => FieldType::Boolean,
        ("date", _) => FieldType::Date,
        ("datetime", _) => FieldType::DateTime,
        ("enumeration", "checkbox") => FieldType::MultiPicklist,
        ("enumeration", "booleancheckbox") => FieldType::Boolean,
        ("enumeration", _) => FieldType::Picklist,
        _ => FieldType::Other,
    }
}

/// The fields of an entity.
pub fn list_fields(entity: &str) -> Result<Vec<FieldInfo>> {
    let object = object(entity)?;
    let properties: Properties =
        api::send(Request::get(api::url(&format!("/crm/v3/properties/{}", object.path))), "reading properties")?
            .json()?;
    let mut fields: Vec<FieldInfo> = properties
        .results
        .into_iter()
        .map(|p| {
            let read_only = p.calculated || p.modification_metadata.as_ref().is_some_and(|m| m.read_only_value);
            FieldInfo {
                field_type: field_type(&p.kind, &p.field_type, &p.name),
                required: false,
                writable: !read_only,
                unique: p.has_unique_value || (entity == "contact" && p.name == "email") || p.name == "hs_object_id",
                options: p.options.into_iter().filter(|o| !o.hidden).map(|o| o.value).collect(),
                name: p.name,
                label: p.label,
            }
        })
        .collect();
    fields.extend(crate::associations::fields(object.path));
    Ok(fields)
}
