//! Lookup fields: a written lookup must name a live record of the object it points to, refused
//! with Salesforce's codes otherwise (`MALFORMED_ID`, `FIELD_INTEGRITY_EXCEPTION`,
//! `INVALID_CROSS_REFERENCE_KEY`, `ENTITY_IS_DELETED`); and SOQL's child-to-parent paths
//! (`SELECT Account.Name FROM Contact`, also in `WHERE` and `ORDER BY`), one level deep.

use serde_json::{Map, Value, json};

use super::errors::SfError;
use super::records::{ObjectStore, SfRecord};
use super::{SalesforceState, USER_ID};

/// A SOQL path to a parent's field, resolved: the lookup on the child and the parent's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentPath {
    /// The relationship as the response names it (`Account`).
    pub relationship: &'static str,
    /// The child's lookup field (`AccountId`).
    pub lookup: &'static str,
    /// The parent object (`Account`).
    pub parent: &'static str,
    /// The parent's field (`Name`).
    pub field: &'static str,
}

/// Whether `id` looks like a Salesforce id: 15 or 18 letters and digits.
fn well_formed(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

impl SalesforceState {
    /// The store of `object` for writing `input`, after its lookups are checked.
    pub fn store_for_write(&mut self, object: &str, input: &Map<String, Value>) -> Result<&mut ObjectStore, SfError> {
        self.check_lookups(object, input)?;
        self.object_mut(object).ok_or_else(|| super::rest::unknown_object(object))
    }

    /// Refuses a lookup value that does not name a live record of the object it points to.
    /// Lookups to objects the emulator does not keep (`User`) are checked for their form only.
    pub fn check_lookups(&self, object: &str, input: &Map<String, Value>) -> Result<(), SfError> {
        let Some(store) = self.object(object) else { return Ok(()) };
        for (name, value) in input {
            let Some(field) = store.schema.field(name) else { continue };
            let targets = field.reference_targets(store.schema.name);
            let (false, Some(id)) = (targets.is_empty(), value.as_str()) else { continue };
            if id.is_empty() {
                continue;
            }
            let bad = |code: &'static str, message: String| {
                Err(SfError::bad(code, message).with_fields(vec![field.name.to_owned()]))
            };
            if !well_formed(id) {
                return bad("MALFORMED_ID", format!("{}: id value of incorrect type: {id}", field.label));
            }
            // Lookups to objects the emulator does not keep (`User`) are checked for form only.
            let kept: Vec<_> = targets.iter().filter_map(|t| self.object(t)).collect();
            if kept.is_empty() {
                continue;
            }
            let Some(parent) = kept.into_iter().find(|p| id.starts_with(p.schema.key_prefix)) else {
                return bad("FIELD_INTEGRITY_EXCEPTION", format!("{}: id value of incorrect type: {id}", field.label));
            };
            match parent.records.get(id) {
                None => return bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id".to_owned()),
                Some(r) if r.deleted_at.is_some() => return bad("ENTITY_IS_DELETED", "entity is deleted".to_owned()),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Resolves `Account.Name` on `store`'s object; `None` for a plain field name. An unknown
    /// relationship or parent field is Salesforce's `INVALID_FIELD`.
    pub fn parent_path(&self, store: &ObjectStore, path: &str) -> Result<Option<ParentPath>, SfError> {
        let Some((relationship, field)) = path.split_once('.') else { return Ok(None) };
        let not_understood = || {
            SfError::bad(
                "INVALID_FIELD",
                format!(
                    "Didn't understand relationship '{relationship}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            )
        };
        let lookup = store
            .schema
            .fields
            .iter()
            .find(|f| f.relationship_name().is_some_and(|r| r.eq_ignore_ascii_case(relationship)))
            .ok_or_else(not_understood)?;
        let parent_name = lookup.reference_to(store.schema.name).ok_or_else(not_understood)?;
        let parent = self.object(parent_name).ok_or_else(not_understood)?;
        let parent_field = parent.schema.field(field).ok_or_else(|| {
            SfError::bad("INVALID_FIELD", format!("No such column '{field}' on entity '{parent_name}'."))
        })?;
        Ok(Some(ParentPath {
            relationship: lookup.relationship_name().unwrap_or(lookup.name),
            lookup: lookup.name,
            parent: parent.schema.name,
            field: parent_field.name,
        }))
    }

    /// The live parent record a child's lookup names.
    fn parent_of<'a>(&'a self, child: &SfRecord, path: &ParentPath) -> Option<(&'a ObjectStore, &'a SfRecord)> {
        let id = child.fields.get(path.lookup)?.as_str()?;
        let parent = self.object(path.parent)?;
        parent.live(id).map(|record| (parent, record))
    }

    /// A parent's field through a child (null when the lookup is empty).
    pub fn parent_value(&self, child: &SfRecord, path: &ParentPath) -> Value {
        self.parent_of(child, path).map_or(Value::Null, |(store, record)| store.value(record, path.field, USER_ID))
    }

    /// Adds the parents `paths` reach to a projected row, as Salesforce nests them: `"Account":
    /// {"attributes": {…}, "Name": …}`, or `"Account": null` when the lookup is empty.
    pub fn add_parents(&self, row: &mut Value, child: &SfRecord, paths: &[ParentPath], version: &str) {
        let Some(row) = row.as_object_mut() else { return };
        for path in paths {
            let nested = match self.parent_of(child, path) {
                None => Value::Null,
                Some((store, record)) => {
                    let mut parent = row.get(path.relationship).cloned().unwrap_or_else(|| {
                        let url = format!("/services/data/v{version}/sobjects/{}/{}", store.schema.name, record.id);
                        json!({ "attributes": { "type": store.schema.name, "url": url } })
                    });
                    parent[path.field] = store.value(record, path.field, USER_ID);
                    parent
                }
            };
            row.insert(path.relationship.to_owned(), nested);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lookups_must_name_a_live_record_of_the_right_object() {
        let mut state = SalesforceState::new(&[]);
        let now = Utc::now();
        let account = state
            .store_for_write("Account", &map(json!({"Name": "Acme"})))
            .unwrap()
            .create(&map(json!({"Name": "Acme"})), now, USER_ID)
            .unwrap();
        let contact =
            state.object_mut("Contact").unwrap().create(&map(json!({"LastName": "Lee"})), now, USER_ID).unwrap();
        assert!(state.check_lookups("Contact", &map(json!({"AccountId": account}))).is_ok());
        assert!(state.check_lookups("Contact", &map(json!({"AccountId": null}))).is_ok(), "clearing is allowed");
        let code = |state: &SalesforceState, value: Value| {
            state.check_lookups("Contact", &map(json!({"AccountId": value}))).unwrap_err().code
        };
        assert_eq!(code(&state, json!("nope")), "MALFORMED_ID");
        assert_eq!(code(&state, json!(contact)), "FIELD_INTEGRITY_EXCEPTION");
        assert_eq!(code(&state, json!("001000000000000AAA")), "INVALID_CROSS_REFERENCE_KEY");
        state.object_mut("Account").unwrap().delete(&account, now).unwrap();
        assert_eq!(code(&state, json!(account)), "ENTITY_IS_DELETED");
    }

    #[test]
    fn parent_paths_resolve_through_lookups_and_unknown_ones_are_refused() {
        let state = SalesforceState::new(&[]);
        let contacts = state.object("Contact").unwrap();
        let path = state.parent_path(contacts, "account.name").unwrap().unwrap();
        assert_eq!(
            (path.relationship, path.lookup, path.parent, path.field),
            ("Account", "AccountId", "Account", "Name")
        );
        assert_eq!(state.parent_path(contacts, "Email").unwrap(), None);
        assert_eq!(state.parent_path(contacts, "Boss.Name").unwrap_err().code, "INVALID_FIELD");
        assert_eq!(state.parent_path(contacts, "Account.Shoe").unwrap_err().code, "INVALID_FIELD");
    }
}
