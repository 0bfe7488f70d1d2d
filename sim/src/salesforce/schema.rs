//! The emulated Salesforce objects (Contact, Lead, Account, Opportunity) and their fields, with
//! the describe flags clients read: types, createable/updateable, nillable, defaultedOnCreate,
//! idLookup, externalId, unique. Each object has one custom external-id field, `External_Id__c`.

use serde_json::{Value, json};

/// A field type, as describe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `id`
    Id,
    /// `string`
    Text,
    /// `textarea`
    TextArea,
    /// `email`
    Email,
    /// `phone`
    Phone,
    /// `url`
    Url,
    /// `picklist`
    Picklist,
    /// `reference`
    Reference,
    /// `boolean`
    Boolean,
    /// `date`
    Date,
    /// `datetime`
    DateTime,
    /// `double`
    Double,
    /// `currency`
    Currency,
    /// `percent`
    Percent,
    /// `int`
    Int,
}

impl FieldKind {
    fn wire(self) -> (&'static str, &'static str) {
        match self {
            Self::Id => ("id", "tns:ID"),
            Self::Text => ("string", "xsd:string"),
            Self::TextArea => ("textarea", "xsd:string"),
            Self::Email => ("email", "xsd:string"),
            Self::Phone => ("phone", "xsd:string"),
            Self::Url => ("url", "xsd:string"),
            Self::Picklist => ("picklist", "xsd:string"),
            Self::Reference => ("reference", "tns:ID"),
            Self::Boolean => ("boolean", "xsd:boolean"),
            Self::Date => ("date", "xsd:date"),
            Self::DateTime => ("datetime", "xsd:dateTime"),
            Self::Double => ("double", "xsd:double"),
            Self::Currency => ("currency", "xsd:double"),
            Self::Percent => ("percent", "xsd:double"),
            Self::Int => ("int", "xsd:int"),
        }
    }

    /// Whether values are text (compared case-insensitively in SOQL).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::Id
                | Self::Text
                | Self::TextArea
                | Self::Email
                | Self::Phone
                | Self::Url
                | Self::Picklist
                | Self::Reference
        )
    }

    /// Whether values are numbers.
    pub fn is_number(self) -> bool {
        matches!(self, Self::Double | Self::Currency | Self::Percent | Self::Int)
    }
}

/// One field.
#[derive(Debug, Clone)]
pub struct Field {
    /// API name.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Type.
    pub kind: FieldKind,
    /// Max length for text.
    pub length: u32,
    /// Settable on create.
    pub createable: bool,
    /// Settable on update.
    pub updateable: bool,
    /// May be null.
    pub nillable: bool,
    /// Gets a value on create when none is given.
    pub defaulted_on_create: bool,
    /// Usable to look records up (and to upsert on).
    pub id_lookup: bool,
    /// A custom external id.
    pub external_id: bool,
    /// Unique.
    pub unique: bool,
    /// Picklist values.
    pub picklist: &'static [&'static str],
    /// The default value for defaulted fields.
    pub default: Option<&'static str>,
}

impl Field {
    /// For a lookup: the object its ids point to (`AccountId` → `Account`; `MasterRecordId` → the
    /// object itself; the owner and audit lookups → `User`).
    /// Polymorphic lookups (`WhoId`, `WhatId`) have no single parent: `None`.
    pub fn reference_to(&self, object: &'static str) -> Option<&'static str> {
        if self.kind != FieldKind::Reference {
            return None;
        }
        Some(match self.name {
            "AccountId" => "Account",
            "CampaignId" => "Campaign",
            "ContactId" => "Contact",
            "LeadId" => "Lead",
            "MasterRecordId" => object,
            "WhoId" | "WhatId" => return None,
            _ => "User",
        })
    }

    /// The objects a lookup's ids may name: one, or for a polymorphic lookup several (a task's
    /// `WhoId` is a contact or a lead; its `WhatId` an account, opportunity or campaign).
    pub fn reference_targets(&self, object: &'static str) -> Vec<&'static str> {
        match self.name {
            "WhoId" if self.kind == FieldKind::Reference => vec!["Contact", "Lead"],
            "WhatId" if self.kind == FieldKind::Reference => vec!["Account", "Opportunity", "Campaign"],
            _ => self.reference_to(object).into_iter().collect(),
        }
    }

    /// For a lookup: the name SOQL reaches the parent by (`AccountId` → `Account`).
    pub fn relationship_name(&self) -> Option<&'static str> {
        (self.kind == FieldKind::Reference).then(|| self.name.strip_suffix("Id").unwrap_or(self.name))
    }
}

const fn field(name: &'static str, label: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        label,
        kind,
        length: 255,
        createable: true,
        updateable: true,
        nillable: true,
        defaulted_on_create: false,
        id_lookup: false,
        external_id: false,
        unique: false,
        picklist: &[],
        default: None,
    }
}

const fn system(name: &'static str, label: &'static str, kind: FieldKind) -> Field {
    let mut f = field(name, label, kind);
    f.createable = false;
    f.updateable = false;
    f.nillable = false;
    f.defaulted_on_create = true;
    f
}

/// `MasterRecordId`: set on a record deleted by a merge, naming the record it was merged into.
const fn merged_into() -> Field {
    let mut f = field("MasterRecordId", "Master Record ID", FieldKind::Reference);
    f.createable = false;
    f.updateable = false;
    f
}

const fn required(mut f: Field) -> Field {
    f.nillable = false;
    f
}

const fn lookup(mut f: Field) -> Field {
    f.id_lookup = true;
    f
}

const fn len(mut f: Field, n: u32) -> Field {
    f.length = n;
    f
}

const fn picklist(mut f: Field, values: &'static [&'static str]) -> Field {
    f.picklist = values;
    f
}

const fn external_id() -> Field {
    let mut f = field("External_Id__c", "External Id", FieldKind::Text);
    f.id_lookup = true;
    f.external_id = true;
    f.unique = true;
    f
}

const PLATFORM_STATUSES: &[&str] = &["Draft", "Sent", "Signed", "Needs Legal Review"];

const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];
const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Banking",
    "Education",
    "Energy",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Technology",
];
const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];
const CAMPAIGN_TYPES: &[&str] = &["Email", "Webinar", "Conference", "Advertisement", "Direct Mail", "Other"];
const CAMPAIGN_STATUSES: &[&str] = &["Planned", "In Progress", "Completed", "Aborted"];
const TASK_STATUSES: &[&str] = &["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"];

/// A required picklist that takes its first value when a create leaves it out.
const fn defaulted(mut f: Field, default: &'static str) -> Field {
    f.nillable = false;
    f.defaulted_on_create = true;
    f.default = Some(default);
    f
}

const LEAD_STATUSES: &[&str] =
    &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"];

fn common_system_fields() -> Vec<Field> {
    vec![
        {
            let mut id = system("Id", "Record ID", FieldKind::Id);
            id.length = 18;
            id.id_lookup = true;
            id
        },
        system("IsDeleted", "Deleted", FieldKind::Boolean),
        system("CreatedDate", "Created Date", FieldKind::DateTime),
        system("CreatedById", "Created By ID", FieldKind::Reference),
        system("LastModifiedDate", "Last Modified Date", FieldKind::DateTime),
        system("LastModifiedById", "Last Modified By ID", FieldKind::Reference),
        system("SystemModstamp", "System Modstamp", FieldKind::DateTime),
        {
            let mut owner = field("OwnerId", "Owner ID", FieldKind::Reference);
            owner.nillable = false;
            owner.defaulted_on_create = true;
            owner
        },
    ]
}

/// An emulated object type.
#[derive(Debug, Clone)]
pub struct ObjectSchema {
    /// API name.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Plural label.
    pub label_plural: &'static str,
    /// Id prefix.
    pub key_prefix: &'static str,
    /// The host-level entity it backs.
    pub entity: &'static str,
    /// Fields.
    pub fields: Vec<Field>,
}

impl ObjectSchema {
    /// A field by name, case-insensitively (Salesforce API names are case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The describe document.
    pub fn describe(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let (kind, soap) = f.kind.wire();
                let text = f.kind.is_text();
                json!({
                    "name": f.name, "label": f.label, "type": kind, "soapType": soap,
                    "length": if text { f.length } else { 0 },
                    "byteLength": if text { f.length * 3 } else { 0 },
                    "createable": f.createable, "updateable": f.updateable, "nillable": f.nillable,
                    "defaultedOnCreate": f.defaulted_on_create, "externalId": f.external_id,
                    "idLookup": f.id_lookup, "unique": f.unique, "caseSensitive": false,
                    "calculated": false, "custom": f.name.ends_with("__c"),
                    "nameField": f.name == "Name", "filterable": true,
                    "sortable": f.kind != FieldKind::TextArea, "groupable": f.kind != FieldKind::TextArea,
                    "picklistValues": f.picklist.iter().map(|v| json!({
                        "active": true, "defaultValue": f.default == Some(*v),
                        "label": v, "validFor": null, "value": v,
                    })).collect::<Vec<_>>(),
                    "referenceTo": f.reference_to(self.name).map_or(json!([]), |to| json!([to])),
                    "relationshipName": f.relationship_name().map_or(Value::Null, |name| json!(name)),
                    "precision": if f.kind == FieldKind::Currency { 18 } else { 0 },
                    "scale": if f.kind == FieldKind::Currency { 2 } else { 0 },
                    "digits": if f.kind == FieldKind::Int { 8 } else { 0 },
                    "autoNumber": false, "deprecatedAndHidden": false, "inlineHelpText": null,
                    "defaultValue": f.default, "encrypted": false, "compoundFieldName": null,
                    "htmlFormatted": false, "restrictedPicklist": false, "dependentPicklist": false,
                })
            })
            .collect();
        json!({
            "name": self.name, "label": self.label, "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix, "custom": false, "createable": true, "updateable": true,
            "deletable": true, "queryable": true, "replicateable": true, "retrieveable": true,
            "searchable": true, "triggerable": true, "undeletable": true, "mergeable": self.name != "Opportunity",
            "layoutable": true, "activateable": false, "feedEnabled": true,
            "urls": {
                "sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}"),
            },
            "fields": fields,
            "childRelationships": [],
            "recordTypeInfos": [{
                "active": true, "available": true, "defaultRecordTypeMapping": true, "master": true,
                "name": "Master", "recordTypeId": "012000000000000AAA", "developerName": "Master",
            }],
        })
    }

    /// The entry in `GET /sobjects`.
    pub fn summary(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "name": self.name, "label": self.label, "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix, "custom": false, "createable": true, "updateable": true,
            "deletable": true, "queryable": true, "retrieveable": true, "searchable": true,
            "urls": { "sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}") },
        })
    }
}

/// Every emulated object.
pub fn objects() -> Vec<ObjectSchema> {
    use FieldKind::*;
    let with_common = |mut own: Vec<Field>| {
        let mut fields = common_system_fields();
        fields.append(&mut own);
        fields
    };
    vec![
        ObjectSchema {
            name: "Contact",
            label: "Contact",
            label_plural: "Contacts",
            key_prefix: "003",
            entity: "contact",
            fields: with_common(vec![
                merged_into(),
                field("AccountId", "Account ID", Reference),
                len(field("FirstName", "First Name", Text), 40),
                required(len(field("LastName", "Last Name", Text), 80)),
                len(system("Name", "Full Name", Text), 121),
                lookup(len(field("Email", "Email", Email), 80)),
                len(field("Phone", "Business Phone", Phone), 40),
                len(field("MobilePhone", "Mobile Phone", Phone), 40),
                len(field("Title", "Title", Text), 128),
                len(field("Department", "Department", Text), 80),
                picklist(field("LeadSource", "Lead Source", Picklist), LEAD_SOURCES),
                len(field("MailingCity", "Mailing City", Text), 40),
                len(field("MailingCountry", "Mailing Country", Text), 80),
                len(field("Description", "Contact Description", TextArea), 32_000),
                external_id(),
            ]),
        },
        ObjectSchema {
            name: "Lead",
            label: "Lead",
            label_plural: "Leads",
            key_prefix: "00Q",
            entity: "lead",
            fields: with_common(vec![
                merged_into(),
                len(field("FirstName", "First Name", Text), 40),
                required(len(field("LastName", "Last Name", Text), 80)),
                len(system("Name", "Full Name", Text), 121),
                required(len(field("Company", "Company", Text), 255)),
                lookup(len(field("Email", "Email", Email), 80)),
                len(field("Phone", "Phone", Phone), 40),
                len(field("Title", "Title", Text), 128),
                picklist(field("Industry", "Industry", Picklist), INDUSTRIES),
                {
                    let mut status = picklist(field("Status", "Status", Picklist), LEAD_STATUSES);
                    status.nillable = false;
                    status.defaulted_on_create = true;
                    status.default = Some("Open - Not Contacted");
                    status
                },
                picklist(field("LeadSource", "Lead Source", Picklist), LEAD_SOURCES),
                len(field("Description", "Description", TextArea), 32_000),
                external_id(),
            ]),
        },
        ObjectSchema {
            name: "Account",
            label: "Account",
            label_plural: "Accounts",
            key_prefix: "001",
            entity: "account",
            fields: with_common(vec![
                merged_into(),
                required(len(field("Name", "Account Name", Text), 255)),
                len(field("Website", "Website", Url), 255),
                len(field("Phone", "Account Phone", Phone), 40),
                picklist(field("Industry", "Industry", Picklist), INDUSTRIES),
                field("NumberOfEmployees", "Employees", Int),
                field("AnnualRevenue", "Annual Revenue", Currency),
                picklist(
                    field("Type", "Account Type", Picklist),
                    &["Prospect", "Customer - Direct", "Partner", "Other"],
                ),
                len(field("BillingCity", "Billing City", Text), 40),
                len(field("BillingCountry", "Billing Country", Text), 80),
                len(field("Description", "Account Description", TextArea), 32_000),
                external_id(),
            ]),
        },
        ObjectSchema {
            name: "Opportunity",
            label: "Opportunity",
            label_plural: "Opportunities",
            key_prefix: "006",
            entity: "opportunity",
            fields: with_common(vec![
                field("AccountId", "Account ID", Reference),
                required(len(field("Name", "Name", Text), 120)),
                field("Amount", "Amount", Currency),
                required(picklist(field("StageName", "Stage", Picklist), STAGES)),
                required(field("CloseDate", "Close Date", Date)),
                field("Probability", "Probability (%)", Percent),
                picklist(field("LeadSource", "Lead Source", Picklist), LEAD_SOURCES),
                len(field("Description", "Description", TextArea), 32_000),
                // A customer's own field, as orgs add them: the platform's status of the deal.
                picklist(field("Platform_Status__c", "Platform Status", Picklist), PLATFORM_STATUSES),
                external_id(),
            ]),
        },
        // Marketing: campaigns, their members (a contact or a lead each, once per campaign) and
        // activities as tasks (an email sent or logged is a task of subtype `Email`).
        ObjectSchema {
            name: "Campaign",
            label: "Campaign",
            label_plural: "Campaigns",
            key_prefix: "701",
            entity: "campaign",
            fields: with_common(vec![
                required(len(field("Name", "Campaign Name", Text), 80)),
                picklist(field("Type", "Type", Picklist), CAMPAIGN_TYPES),
                defaulted(picklist(field("Status", "Status", Picklist), CAMPAIGN_STATUSES), "Planned"),
                field("StartDate", "Start Date", Date),
                field("EndDate", "End Date", Date),
                field("IsActive", "Active", Boolean),
                system("NumberOfContacts", "Contacts in Campaign", Int),
                system("NumberOfLeads", "Leads in Campaign", Int),
                len(field("Description", "Description", TextArea), 32_000),
                external_id(),
            ]),
        },
        ObjectSchema {
            name: "CampaignMember",
            label: "Campaign Member",
            label_plural: "Campaign Members",
            key_prefix: "00v",
            entity: "campaign_member",
            fields: with_common(vec![
                required(field("CampaignId", "Campaign ID", Reference)),
                field("ContactId", "Contact ID", Reference),
                field("LeadId", "Lead ID", Reference),
                defaulted(len(field("Status", "Status", Text), 40), "Sent"),
                system("HasResponded", "Responded", Boolean),
                field("FirstRespondedDate", "First Responded Date", Date),
                external_id(),
            ]),
        },
        ObjectSchema {
            name: "Task",
            label: "Task",
            label_plural: "Tasks",
            key_prefix: "00T",
            entity: "task",
            fields: with_common(vec![
                len(field("Subject", "Subject", Text), 255),
                defaulted(picklist(field("Status", "Status", Picklist), TASK_STATUSES), "Not Started"),
                defaulted(picklist(field("Priority", "Priority", Picklist), &["High", "Normal", "Low"]), "Normal"),
                picklist(field("TaskSubtype", "Task Subtype", Picklist), &["Task", "Email", "Call", "ListEmail"]),
                field("WhoId", "Name ID", Reference),
                field("WhatId", "Related To ID", Reference),
                field("ActivityDate", "Due Date Only", Date),
                len(field("Description", "Description", TextArea), 32_000),
                external_id(),
            ]),
        },
        // Salesforce Files: a document's versions, and the links that attach a document to
        // records. The bytes live beside the store (`SalesforceState::files`), read through
        // `sobjects/ContentVersion/{id}/VersionData`; `attach_file` makes all three.
        ObjectSchema {
            name: "ContentVersion",
            label: "Content Version",
            label_plural: "Content Versions",
            key_prefix: "068",
            entity: "content_version",
            fields: with_common(vec![
                required(len(field("Title", "Title", Text), 255)),
                len(field("PathOnClient", "Path On Client", Text), 500),
                len(system("FileExtension", "File Extension", Text), 40),
                system("FileType", "File Type", Text),
                system("ContentSize", "Size", Int),
                system("ContentDocumentId", "ContentDocument ID", Reference),
                system("IsLatest", "Is Latest", Boolean),
                field("FirstPublishLocationId", "First Publish Location ID", Reference),
            ]),
        },
        ObjectSchema {
            name: "ContentDocumentLink",
            label: "Content Document Link",
            label_plural: "Content Document Link",
            key_prefix: "06A",
            entity: "content_document_link",
            fields: with_common(vec![
                required(field("ContentDocumentId", "ContentDocument ID", Reference)),
                required(field("LinkedEntityId", "Linked Entity ID", Reference)),
                len(field("ShareType", "Share Type", Text), 40),
                len(field("Visibility", "Visibility", Text), 40),
            ]),
        },
    ]
}
