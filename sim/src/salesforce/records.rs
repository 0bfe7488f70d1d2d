//! Salesforce records: storage per object and the write rules shared by single-record and
//! collection endpoints (field validation, required fields, unique external ids, system fields,
//! `LastModifiedDate` / `SystemModstamp` on every write).

use super::notifications::Change;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::errors::SfError;
use super::index::RecordIndex;
use super::schema::{FieldKind, ObjectSchema};

/// Salesforce's datetime format: milliseconds and a `+0000` offset.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Parses the datetime forms clients send: `Z`, `+00:00`, `+0000`, with or without milliseconds.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|t| t.with_timezone(&Utc))
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct SfRecord {
    /// 18-character id.
    pub id: String,
    /// Writable field values by canonical field name.
    pub fields: BTreeMap<&'static str, Value>,
    /// `CreatedDate`.
    pub created: DateTime<Utc>,
    /// `LastModifiedDate`.
    pub modified: DateTime<Utc>,
    /// `SystemModstamp`.
    pub modstamp: DateTime<Utc>,
    /// When it was deleted (in the recycle bin).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The records of one object.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    /// The object.
    pub schema: ObjectSchema,
    /// Records by id. Read freely; write only through the methods below, which keep `index`
    /// current.
    pub records: BTreeMap<String, SfRecord>,
    /// Changes since the notifier last took them, while a subscriber watches this object.
    pub journal: Option<Vec<(String, Change)>>,
    /// Modstamp order and look-up values, for queries.
    pub index: RecordIndex,
    next: u64,
}

impl ObjectStore {
    /// An empty store for `schema`.
    pub fn new(schema: ObjectSchema) -> Self {
        let index = RecordIndex::new(&schema);
        Self { schema, records: BTreeMap::new(), journal: None, index, next: 0 }
    }

    /// Stores a new record and indexes it.
    fn insert(&mut self, record: SfRecord) {
        self.index.add(&record);
        self.records.insert(record.id.clone(), record);
    }

    /// Changes a stored record, re-indexing it around the change.
    fn change(&mut self, id: &str, apply: impl FnOnce(&mut SfRecord)) {
        let Some(record) = self.records.get_mut(id) else { return };
        self.index.remove(record);
        apply(record);
        self.index.add(record);
    }

    /// A live (not deleted) record.
    pub fn live(&self, id: &str) -> Option<&SfRecord> {
        self.records.get(id).filter(|r| r.deleted_at.is_none())
    }

    /// Converts and checks one input value for a field.
    fn convert(&self, name: &str, value: &Value, creating: bool) -> Result<(&'static str, Value), SfError> {
        let object = self.schema.name;
        let field = self.schema.field(name).ok_or_else(|| {
            SfError::bad("INVALID_FIELD", format!("No such column '{name}' on sobject of type {object}"))
        })?;
        let writable = if creating { field.createable } else { field.updateable };
        if !writable {
            return Err(SfError::bad(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
            )
            .with_fields(vec![field.name.to_owned()]));
        }
        let type_error = || {
            SfError::bad(
                "JSON_PARSER_ERROR",
                format!(
                    "Cannot deserialize instance of {} from {value} value for field {}",
                    field.kind_name(),
                    field.name
                ),
            )
        };
        let converted = match (&field.kind, value) {
            (_, Value::Null) => Value::Null,
            (kind, Value::String(s)) if kind.is_text() => {
                if s.chars().count() > field.length as usize {
                    return Err(SfError::bad(
                        "STRING_TOO_LONG",
                        format!("{}: data value too large: {s} (max length={})", field.label, field.length),
                    )
                    .with_fields(vec![field.name.to_owned()]));
                }
                if *kind == FieldKind::Email && !s.is_empty() && !crate::is_valid_email(s) {
                    return Err(SfError::bad("INVALID_EMAIL_ADDRESS", format!("Email: invalid email address: {s}"))
                        .with_fields(vec![field.name.to_owned()]));
                }
                if *kind == FieldKind::Picklist && !field.picklist.is_empty() && !s.is_empty() {
                    // Unrestricted picklists accept any value, as in most orgs.
                }
                if s.is_empty() { Value::Null } else { Value::String(s.clone()) }
            }
            (kind, Value::Number(n)) if kind.is_number() => {
                if *kind == FieldKind::Int && n.as_i64().is_none() && n.as_f64().is_some_and(|f| f.fract() != 0.0) {
                    return Err(type_error());
                }
                Value::Number(n.clone())
            }
            (kind, Value::String(s)) if kind.is_number() => {
                let parsed: f64 = s.parse().map_err(|_| type_error())?;
                json!(parsed)
            }
            (FieldKind::Boolean, Value::Bool(b)) => Value::Bool(*b),
            (FieldKind::Date, Value::String(s)) => {
                let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| type_error())?;
                Value::String(date.to_string())
            }
            (FieldKind::DateTime, Value::String(s)) => {
                Value::String(format_datetime(parse_datetime(s).ok_or_else(type_error)?))
            }
            _ => return Err(type_error()),
        };
        Ok((field.name, converted))
    }

    /// Validates an input map; returns the converted values.
    pub fn validate(
        &self,
        input: &Map<String, Value>,
        creating: bool,
        existing: Option<&SfRecord>,
    ) -> Result<BTreeMap<&'static str, Value>, SfError> {
        let mut values = BTreeMap::new();
        for (name, value) in input {
            if name == "attributes" || (name.eq_ignore_ascii_case("Id") && !creating) {
                continue;
            }
            let (field, converted) = self.convert(name, value, creating)?;
            values.insert(field, converted);
        }
        // Required fields: missing on create, or cleared on update.
        let missing: Vec<String> = self
            .schema
            .fields
            .iter()
            .filter(|f| !f.nillable && f.createable && !f.defaulted_on_create)
            .filter(|f| {
                let given = values.get(f.name);
                match (given, existing) {
                    (Some(Value::Null), _) => true,
                    (Some(_), _) => false,
                    (None, Some(_)) => false,
                    (None, None) => true,
                }
            })
            .map(|f| f.name.to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(SfError::bad(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing));
        }
        // Unique fields.
        for field in self.schema.fields.iter().filter(|f| f.unique && f.createable) {
            if let Some(Value::String(v)) = values.get(field.name) {
                let clash =
                    self.live_with(field.name, v).find(|id| Some(id.as_str()) != existing.map(|e| e.id.as_str()));
                if let Some(other) = clash {
                    return Err(SfError::bad(
                        "DUPLICATE_VALUE",
                        format!("duplicate value found: {} duplicates value on record with id: {}", field.name, other),
                    )
                    .with_fields(vec![field.name.to_owned()]));
                }
            }
        }
        Ok(values)
    }

    /// Creates a record; returns its id.
    pub fn create(&mut self, input: &Map<String, Value>, now: DateTime<Utc>, user_id: &str) -> Result<String, SfError> {
        let mut values = self.validate(input, true, None)?;
        self.check_membership(&values)?;
        for field in self.schema.fields.iter().filter(|f| f.defaulted_on_create && f.createable) {
            if !matches!(values.get(field.name), Some(v) if !v.is_null()) {
                let default = match (field.name, field.default) {
                    ("OwnerId", _) => Value::String(user_id.to_owned()),
                    (_, Some(d)) => Value::String(d.to_owned()),
                    _ => continue,
                };
                values.insert(field.name, default);
            }
        }
        self.next += 1;
        let id = crate::ids::salesforce_id(self.schema.key_prefix, self.next);
        self.insert(SfRecord {
            id: id.clone(),
            fields: values,
            created: now,
            modified: now,
            modstamp: now,
            deleted_at: None,
        });
        self.journal_change(&id, Change::Created);
        Ok(id)
    }

    /// A new campaign member names a contact or a lead, and each only once per campaign
    /// (Salesforce's `REQUIRED_FIELD_MISSING` and `DUPLICATE_VALUE` "Already a campaign member.").
    fn check_membership(&self, values: &BTreeMap<&'static str, Value>) -> Result<(), SfError> {
        if self.schema.name != "CampaignMember" {
            return Ok(());
        }
        let set = |name: &str| values.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        let Some((field, member)) =
            set("ContactId").map(|id| ("ContactId", id)).or(set("LeadId").map(|id| ("LeadId", id)))
        else {
            return Err(SfError::bad("REQUIRED_FIELD_MISSING", "Required fields are missing: [ContactId, LeadId]")
                .with_fields(vec!["ContactId".to_owned(), "LeadId".to_owned()]));
        };
        let campaign = set("CampaignId");
        let already = self.records.values().filter(|r| r.deleted_at.is_none()).any(|r| {
            r.fields.get("CampaignId").and_then(Value::as_str) == campaign
                && r.fields.get(field).and_then(Value::as_str) == Some(member)
        });
        if already {
            return Err(
                SfError::bad("DUPLICATE_VALUE", "Already a campaign member.").with_fields(vec![field.to_owned()])
            );
        }
        Ok(())
    }

    /// Updates a live record.
    pub fn update(&mut self, id: &str, input: &Map<String, Value>, now: DateTime<Utc>) -> Result<(), SfError> {
        let existing = self.lookup_for_write(id)?.clone();
        let values = self.validate(input, false, Some(&existing))?;
        self.change(id, |record| {
            record.fields.extend(values);
            record.modified = now;
            record.modstamp = now;
        });
        self.journal_change(id, Change::Updated);
        Ok(())
    }

    /// Moves a live record to the recycle bin.
    pub fn delete(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SfError> {
        self.lookup_for_write(id)?;
        self.change(id, |record| {
            record.deleted_at = Some(now);
            record.modstamp = now;
        });
        self.journal_change(id, Change::Deleted);
        Ok(())
    }

    /// Inserts a record the org makes itself (system fields a client may not write), as it
    /// stands; returns its id.
    pub fn insert_system(
        &mut self,
        mut fields: BTreeMap<&'static str, Value>,
        now: DateTime<Utc>,
        user_id: &str,
    ) -> String {
        fields.entry("OwnerId").or_insert_with(|| Value::String(user_id.to_owned()));
        self.next += 1;
        let id = crate::ids::salesforce_id(self.schema.key_prefix, self.next);
        let record = SfRecord { id: id.clone(), fields, created: now, modified: now, modstamp: now, deleted_at: None };
        self.insert(record);
        self.journal_change(&id, Change::Created);
        id
    }

    /// Merges `losers` into `master` as Salesforce's `merge()` does: each loser is deleted with
    /// `MasterRecordId` naming the master, and the master is modified. Objects without
    /// `MasterRecordId` (Opportunity) cannot be merged.
    pub fn merge(&mut self, master: &str, losers: &[&str], now: DateTime<Utc>) -> Result<(), SfError> {
        if self.schema.field("MasterRecordId").is_none() {
            return Err(SfError::bad("INVALID_TYPE", format!("{} records cannot be merged", self.schema.name)));
        }
        self.lookup_for_write(master)?;
        for loser in losers {
            if *loser == master {
                return Err(SfError::bad("INVALID_ID_FIELD", "a record cannot be merged into itself"));
            }
            self.lookup_for_write(loser)?;
        }
        for loser in losers {
            self.change(loser, |record| {
                record.fields.insert("MasterRecordId", Value::String(master.to_owned()));
                record.deleted_at = Some(now);
                record.modstamp = now;
            });
            self.journal_change(loser, Change::Deleted);
        }
        self.change(master, |record| {
            record.modified = now;
            record.modstamp = now;
        });
        self.journal_change(master, Change::Updated);
        Ok(())
    }

    fn journal_change(&mut self, id: &str, change: Change) {
        if let Some(journal) = &mut self.journal {
            journal.push((id.to_owned(), change));
        }
    }

    fn lookup_for_write(&self, id: &str) -> Result<&SfRecord, SfError> {
        match self.records.get(id) {
            Some(r) if r.deleted_at.is_some() => Err(SfError::bad("ENTITY_IS_DELETED", "entity is deleted")),
            Some(r) => Ok(r),
            None if id.len() != 15 && id.len() != 18 => {
                Err(SfError::bad("MALFORMED_ID", format!("{} ID: id value of incorrect type: {id}", self.schema.name)))
            }
            None => Err(SfError::not_found()),
        }
    }

    /// Ids of live records whose `field` equals `value` (case-insensitively for text, as Salesforce matches).
    pub fn find_by(&self, field: &str, value: &str) -> Vec<String> {
        if field.eq_ignore_ascii_case("Id") {
            return self.live(value).map(|r| vec![r.id.clone()]).unwrap_or_default();
        }
        let Some(field) = self.schema.field(field) else { return Vec::new() };
        self.live_with(field.name, value).cloned().collect()
    }

    /// Ids of live records whose text `field` (canonical) equals `value` case-insensitively: from
    /// the index when the field has one, else by a scan.
    fn live_with<'a>(&'a self, field: &'static str, value: &'a str) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        if let Some(ids) = self.index.ids_with(field, value) {
            return Box::new(ids);
        }
        Box::new(
            self.records
                .values()
                .filter(|r| r.deleted_at.is_none())
                .filter(move |r| {
                    r.fields.get(field).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(value))
                })
                .map(|r| &r.id),
        )
    }

    /// The value of any field, system fields included, as the API shows it.
    pub fn value(&self, record: &SfRecord, field: &str, user_id: &str) -> Value {
        match field {
            "Id" => json!(record.id),
            "IsDeleted" => json!(record.deleted_at.is_some()),
            "CreatedDate" => json!(format_datetime(record.created)),
            "LastModifiedDate" => json!(format_datetime(record.modified)),
            "SystemModstamp" => json!(format_datetime(record.modstamp)),
            "CreatedById" | "LastModifiedById" => json!(user_id),
            "Name" if self.schema.field("FirstName").is_some() => {
                let first = record.fields.get("FirstName").and_then(Value::as_str).unwrap_or_default();
                let last = record.fields.get("LastName").and_then(Value::as_str).unwrap_or_default();
                json!(format!("{first} {last}").trim())
            }
            name => record.fields.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    /// A record as JSON with `attributes`, all fields or `only` these (canonical names).
    pub fn to_json(&self, record: &SfRecord, only: Option<&[&'static str]>, version: &str, user_id: &str) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".to_owned(),
            json!({ "type": self.schema.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", self.schema.name, record.id) }),
        );
        let names: Vec<&'static str> = match only {
            Some(names) => names.to_vec(),
            None => self.schema.fields.iter().map(|f| f.name).collect(),
        };
        for name in names {
            out.insert(name.to_owned(), self.value(record, name, user_id));
        }
        Value::Object(out)
    }
}

impl super::schema::Field {
    /// The type name used in parser errors.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            FieldKind::Double | FieldKind::Currency | FieldKind::Percent => "double",
            FieldKind::Int => "int",
            FieldKind::Boolean => "boolean",
            FieldKind::Date => "date",
            FieldKind::DateTime => "datetime",
            _ => "string",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::schema::objects;

    fn contacts() -> ObjectStore {
        ObjectStore::new(objects().into_iter().find(|o| o.name == "Contact").unwrap())
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_requires_last_name_and_names_it() {
        let err = contacts().create(&map(json!({"FirstName": "A"})), Utc::now(), "005").unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]")
        );
        assert_eq!(err.fields, ["LastName"]);
    }

    #[test]
    fn unknown_read_only_and_invalid_values_are_rejected_with_salesforce_codes() {
        let store = contacts();
        let cases = [
            (json!({"LastName": "x", "Foo": 1}), "INVALID_FIELD"),
            (json!({"LastName": "x", "CreatedDate": "2024-01-01T00:00:00Z"}), "INVALID_FIELD_FOR_INSERT_UPDATE"),
            (json!({"LastName": "x", "Email": "nope"}), "INVALID_EMAIL_ADDRESS"),
            (json!({"LastName": "x".repeat(81)}), "STRING_TOO_LONG"),
        ];
        for (input, code) in cases {
            assert_eq!(store.validate(&map(input.clone()), true, None).unwrap_err().code, code, "{input}");
        }
    }

    #[test]
    fn field_names_are_case_insensitive_and_email_lookup_too() {
        let mut store = contacts();
        let id = store.create(&map(json!({"lastname": "Lee", "EMAIL": "Ann@Example.com"})), Utc::now(), "005").unwrap();
        assert_eq!(store.find_by("email", "ann@example.COM"), [id]);
    }

    #[test]
    fn duplicate_external_ids_are_refused() {
        let mut store = contacts();
        store.create(&map(json!({"LastName": "a", "External_Id__c": "k1"})), Utc::now(), "005").unwrap();
        let err = store.create(&map(json!({"LastName": "b", "External_Id__c": "K1"})), Utc::now(), "005").unwrap_err();
        assert_eq!(err.code, "DUPLICATE_VALUE");
    }

    #[test]
    fn writes_move_system_modstamp_and_deleted_records_are_refused() {
        let mut store = contacts();
        let t0 = Utc::now();
        let id = store.create(&map(json!({"LastName": "a"})), t0, "005").unwrap();
        let t1 = t0 + chrono::Duration::seconds(5);
        store.update(&id, &map(json!({"Title": "CEO"})), t1).unwrap();
        assert_eq!(store.records[&id].modstamp, t1);
        store.delete(&id, t1).unwrap();
        assert_eq!(store.update(&id, &map(json!({"Title": "x"})), t1).unwrap_err().code, "ENTITY_IS_DELETED");
    }
}
