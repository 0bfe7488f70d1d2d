//! HubSpot property definitions for contacts, companies, deals and email engagements, and the
//! properties API.

use serde_json::{Value, json};

/// A property's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropType {
    /// `string`
    Text,
    /// `number`
    Number,
    /// `datetime`
    DateTime,
    /// `date`
    Date,
    /// `enumeration`
    Enumeration,
    /// `bool`
    Bool,
    /// `phone_number`
    Phone,
}

/// One property definition.
#[derive(Debug, Clone)]
pub struct Property {
    /// Internal name.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Type.
    pub kind: PropType,
    /// Field type (UI control).
    pub field_type: &'static str,
    /// Group.
    pub group: &'static str,
    /// Unique across records (usable as `idProperty`).
    pub unique: bool,
    /// Written by HubSpot only.
    pub read_only: bool,
    /// Options for enumerations.
    pub options: &'static [&'static str],
}

const fn prop(name: &'static str, label: &'static str, kind: PropType, field_type: &'static str) -> Property {
    Property { name, label, kind, field_type, group: "", unique: false, read_only: false, options: &[] }
}

const fn ro(mut p: Property) -> Property {
    p.read_only = true;
    p
}

const fn grouped(mut p: Property, group: &'static str) -> Property {
    p.group = group;
    p
}

const INDUSTRIES: &[&str] = &[
    "ACCOUNTING",
    "BANKING",
    "COMPUTER_SOFTWARE",
    "EDUCATION_MANAGEMENT",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
];
const LIFECYCLE: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];
const STAGES: &[&str] = &[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];

const EMAIL_DIRECTIONS: &[&str] = &["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"];
const EMAIL_STATUSES: &[&str] = &["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"];

/// The object types: (path name, singular, type id, last-modified property, default search properties).
pub const OBJECT_TYPES: &[(&str, &str, &str, &str)] = &[
    ("contacts", "contact", "0-1", "lastmodifieddate"),
    ("companies", "company", "0-2", "hs_lastmodifieddate"),
    ("deals", "deal", "0-3", "hs_lastmodifieddate"),
    ("emails", "email", "0-49", "hs_lastmodifieddate"),
];

/// Properties of an object type (plural path name).
pub fn properties(object: &str) -> Vec<Property> {
    use PropType::*;
    let mut list = match object {
        "contacts" => vec![
            grouped(Property { unique: true, ..prop("email", "Email", Text, "text") }, "contactinformation"),
            grouped(prop("firstname", "First Name", Text, "text"), "contactinformation"),
            grouped(prop("lastname", "Last Name", Text, "text"), "contactinformation"),
            grouped(prop("phone", "Phone Number", Phone, "phonenumber"), "contactinformation"),
            grouped(prop("jobtitle", "Job Title", Text, "text"), "contactinformation"),
            grouped(prop("company", "Company Name", Text, "text"), "contactinformation"),
            grouped(
                Property { options: LIFECYCLE, ..prop("lifecyclestage", "Lifecycle Stage", Enumeration, "radio") },
                "contactinformation",
            ),
            grouped(ro(prop("lastmodifieddate", "Last Modified Date", DateTime, "date")), "contactinformation"),
        ],
        "companies" => vec![
            grouped(prop("name", "Company name", Text, "text"), "companyinformation"),
            grouped(prop("domain", "Company Domain Name", Text, "text"), "companyinformation"),
            grouped(prop("phone", "Phone Number", Phone, "phonenumber"), "companyinformation"),
            grouped(
                Property { options: INDUSTRIES, ..prop("industry", "Industry", Enumeration, "select") },
                "companyinformation",
            ),
            grouped(prop("numberofemployees", "Number of Employees", Number, "number"), "companyinformation"),
            grouped(prop("city", "City", Text, "text"), "companyinformation"),
            grouped(ro(prop("hs_lastmodifieddate", "Last Modified Date", DateTime, "date")), "companyinformation"),
        ],
        // Email engagements: `hs_timestamp` (when it was sent or logged) is required on create.
        // `crmhost_external_id` stands for the unique custom property a portal adds so a
        // workspace's own id can find its emails again (HubSpot has no natural key for them).
        "emails" => vec![
            grouped(prop("hs_timestamp", "Activity date", DateTime, "date"), "email"),
            grouped(prop("hs_email_subject", "Email subject", Text, "text"), "email"),
            grouped(prop("hs_email_text", "Email body", Text, "textarea"), "email"),
            grouped(
                Property {
                    options: EMAIL_DIRECTIONS,
                    ..prop("hs_email_direction", "Email direction", Enumeration, "select")
                },
                "email",
            ),
            grouped(
                Property {
                    options: EMAIL_STATUSES,
                    ..prop("hs_email_status", "Email send status", Enumeration, "select")
                },
                "email",
            ),
            grouped(Property { unique: true, ..prop("crmhost_external_id", "External id", Text, "text") }, "email"),
            grouped(ro(prop("hs_lastmodifieddate", "Last Modified Date", DateTime, "date")), "email"),
        ],
        _ => vec![
            grouped(prop("dealname", "Deal Name", Text, "text"), "dealinformation"),
            grouped(prop("amount", "Amount", Number, "number"), "dealinformation"),
            grouped(
                Property { options: STAGES, ..prop("dealstage", "Deal Stage", Enumeration, "radio") },
                "dealinformation",
            ),
            grouped(
                Property { options: &["default"], ..prop("pipeline", "Pipeline", Enumeration, "select") },
                "dealinformation",
            ),
            grouped(prop("closedate", "Close Date", DateTime, "date"), "dealinformation"),
            grouped(ro(prop("hs_lastmodifieddate", "Last Modified Date", DateTime, "date")), "dealinformation"),
        ],
    };
    let owner_label = match object {
        "contacts" => "Contact owner",
        "companies" => "Company owner",
        "emails" => "Activity assigned to",
        _ => "Deal owner",
    };
    // HubSpot's owner property: an enumeration whose options are the account's owner ids.
    list.push(grouped(
        Property { options: super::owners::OWNER_IDS, ..prop("hubspot_owner_id", owner_label, Enumeration, "select") },
        "sales_properties",
    ));
    list.push(grouped(ro(prop("createdate", "Create Date", DateTime, "date")), "system"));
    list.push(grouped(Property { unique: true, ..ro(prop("hs_object_id", "Record ID", Number, "number")) }, "system"));
    list.push(grouped(ro(prop("hs_merged_object_ids", "Merged record IDs", Enumeration, "checkbox")), "system"));
    list
}

/// Properties returned when a request names none.
pub fn default_properties(object: &str) -> &'static [&'static str] {
    match object {
        "contacts" => &["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
        "companies" => &["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
        "emails" => &["createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"],
        _ => &[
            "amount",
            "closedate",
            "createdate",
            "dealname",
            "dealstage",
            "hs_lastmodifieddate",
            "hs_object_id",
            "pipeline",
        ],
    }
}

impl Property {
    /// The property-definition JSON.
    pub fn to_json(&self, index: usize) -> Value {
        let kind = match self.kind {
            PropType::Text => "string",
            PropType::Number => "number",
            PropType::DateTime => "datetime",
            PropType::Date => "date",
            PropType::Enumeration => "enumeration",
            PropType::Bool => "bool",
            PropType::Phone => "phone_number",
        };
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| json!({ "label": o, "value": o, "description": "", "displayOrder": i, "hidden": false }))
            .collect();
        json!({
            "name": self.name, "label": self.label, "type": kind, "fieldType": self.field_type,
            "description": "", "groupName": self.group, "options": options,
            "displayOrder": index, "calculated": false, "externalOptions": false,
            "hasUniqueValue": self.unique, "hidden": false, "hubspotDefined": true,
            "showCurrencySymbol": false, "formField": !self.read_only, "archived": false,
            "createdAt": "2019-08-06T02:41:08.029Z", "updatedAt": "2019-08-06T02:41:08.029Z",
            "modificationMetadata": {
                "archivable": false, "readOnlyDefinition": true, "readOnlyValue": self.read_only, "readOnlyOptions": self.kind != PropType::Enumeration,
            },
            "dataSensitivity": "non_sensitive",
        })
    }
}
