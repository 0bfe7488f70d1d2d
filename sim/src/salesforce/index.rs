//! The indexes an object's records keep so a query costs what Salesforce's would: records in
//! `(SystemModstamp, Id)` order (a keyset page is a range walk, O(page + log n)) and the values of
//! look-up fields (`idLookup`: Email, external ids) so `WHERE Email IN (…)` and unique checks do not
//! scan the object.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::records::SfRecord;
use super::schema::ObjectSchema;
use super::soql::{Condition, Literal, OrderKey};

/// The indexes of one object's records; [`super::records::ObjectStore`] keeps them current on
/// every write.
#[derive(Debug, Clone, Default)]
pub struct RecordIndex {
    /// Every record, deleted ones too (`queryAll` sees them), by `(SystemModstamp, Id)` exactly
    /// as SOQL orders and compares them: the instant in whole milliseconds as the API shows it,
    /// the id case-insensitively (the 18-character form stays unique that way); then the id.
    by_modstamp: BTreeSet<(i64, String, String)>,
    /// Live records' ids by look-up field and lower-cased value (Salesforce matches text
    /// case-insensitively).
    by_value: HashMap<&'static str, HashMap<String, BTreeSet<String>>>,
}

/// Where a query's rows come from.
#[derive(Debug)]
pub enum Scan {
    /// Only these ids can match (from a look-up field's index); filter and sort them.
    Ids(BTreeSet<String>),
    /// Walk `(SystemModstamp, Id)` order from this key (milliseconds, lower-case id); rows come
    /// out already sorted.
    Modstamp(Option<(i64, String)>),
    /// Every record, then sort.
    Full,
}

impl RecordIndex {
    /// An index over `schema`'s look-up text fields.
    pub fn new(schema: &ObjectSchema) -> Self {
        let by_value = schema
            .fields
            .iter()
            // `Id` is the record's key, not one of its stored fields: queries on it read records by key.
            .filter(|f| f.id_lookup && f.kind.is_text() && f.name != "Id")
            .map(|f| (f.name, HashMap::new()))
            .collect();
        Self { by_modstamp: BTreeSet::new(), by_value }
    }

    /// Adds a record as it now stands.
    pub fn add(&mut self, record: &SfRecord) {
        self.by_modstamp.insert(modstamp_key(record));
        if record.deleted_at.is_some() {
            return;
        }
        for (field, values) in &mut self.by_value {
            if let Some(key) = record.fields.get(field).and_then(Value::as_str) {
                values.entry(key.to_lowercase()).or_default().insert(record.id.clone());
            }
        }
    }

    /// Removes a record as it stood when added.
    pub fn remove(&mut self, record: &SfRecord) {
        self.by_modstamp.remove(&modstamp_key(record));
        for (field, values) in &mut self.by_value {
            let Some(key) = record.fields.get(field).and_then(Value::as_str).map(str::to_lowercase) else { continue };
            if let Some(ids) = values.get_mut(&key) {
                ids.remove(&record.id);
                if ids.is_empty() {
                    values.remove(&key);
                }
            }
        }
    }

    /// Whether `field` (canonical name) has a value index.
    pub fn has_values(&self, field: &str) -> bool {
        self.by_value.contains_key(field)
    }

    /// Live records whose `field` equals `value`, case-insensitively; `None` when the field has
    /// no index.
    pub fn ids_with(&self, field: &str, value: &str) -> Option<impl Iterator<Item = &String>> {
        let values = self.by_value.get(field)?;
        Some(values.get(&value.to_lowercase()).into_iter().flatten())
    }

    /// Record ids in `(SystemModstamp, Id)` order, from the key `from` (milliseconds, lower-case
    /// id) on.
    pub fn in_modstamp_order(&self, from: Option<(i64, String)>) -> impl Iterator<Item = &str> {
        let (ms, id) = from.unwrap_or((i64::MIN, String::new()));
        let start = (ms, id, String::new());
        self.by_modstamp.range(start..).map(|(_, _, id)| id.as_str())
    }

    /// Chooses how to find the rows of a query with `condition` and `order` (canonical field names
    /// resolved by `canonical`).
    pub fn plan(
        &self,
        condition: Option<&Condition>,
        order: &[OrderKey],
        canonical: &dyn Fn(&str) -> Option<&'static str>,
    ) -> Scan {
        if let Some(ids) = condition.and_then(|c| self.lookup_ids(c, canonical)) {
            return Scan::Ids(ids);
        }
        if keyset_order(order, canonical) {
            return Scan::Modstamp(condition.and_then(|c| keyset_floor(c, canonical)));
        }
        Scan::Full
    }

    /// The ids a condition can only be true for, when one of its `AND`ed terms is an equality or
    /// `IN` on an indexed field.
    fn lookup_ids(
        &self,
        condition: &Condition,
        canonical: &dyn Fn(&str) -> Option<&'static str>,
    ) -> Option<BTreeSet<String>> {
        let gather = |field: &str, literals: &[&Literal]| -> Option<BTreeSet<String>> {
            let field = canonical(field).filter(|f| *f == "Id" || self.has_values(f))?;
            let mut ids = BTreeSet::new();
            for literal in literals {
                let Literal::Text(text) = literal else { return None };
                if field == "Id" {
                    ids.insert(text.clone());
                } else {
                    ids.extend(self.ids_with(field, text)?.cloned());
                }
            }
            Some(ids)
        };
        match condition {
            Condition::Compare(field, "=", literal) => gather(field, &[literal]),
            Condition::In(field, literals, false) => gather(field, &literals.iter().collect::<Vec<_>>()),
            Condition::And(a, b) => self.lookup_ids(a, canonical).or_else(|| self.lookup_ids(b, canonical)),
            _ => None,
        }
    }
}

fn modstamp_key(record: &SfRecord) -> (i64, String, String) {
    (record.modstamp.timestamp_millis(), record.id.to_lowercase(), record.id.clone())
}

/// `ORDER BY SystemModstamp[, Id]`, both ascending: the index's own order.
fn keyset_order(order: &[OrderKey], canonical: &dyn Fn(&str) -> Option<&'static str>) -> bool {
    let names: Vec<Option<&'static str>> = order.iter().map(|k| canonical(&k.field)).collect();
    let ascending = order.iter().all(|k| !k.descending);
    ascending && matches!(names.as_slice(), [Some("SystemModstamp")] | [Some("SystemModstamp"), Some("Id")])
}

/// Where in `(SystemModstamp ms, lower-case Id)` order the first row satisfying `condition` can
/// be, when the condition bounds it from below: `SystemModstamp > t` starts after `t`'s
/// millisecond, `>= t` and `= t` at it, and the keyset form `(… > t OR (… = t AND Id > x))` at
/// `(t, x)`, so a page costs O(page + log n) however many records share an instant.
fn keyset_floor(condition: &Condition, canonical: &dyn Fn(&str) -> Option<&'static str>) -> Option<(i64, String)> {
    let is = |field: &str, name: &str| canonical(field) == Some(name);
    match condition {
        Condition::Compare(field, op, Literal::DateTime(t)) if is(field, "SystemModstamp") => {
            let exact = t.timestamp_subsec_nanos() % 1_000_000 == 0;
            let ms = t.timestamp_millis();
            match *op {
                ">" => Some((ms + 1, String::new())),
                ">=" => Some((if exact { ms } else { ms + 1 }, String::new())),
                "=" => Some((ms, String::new())),
                _ => None,
            }
        }
        Condition::And(a, b) => {
            // `SystemModstamp = t AND Id > x`: the instant is fixed, so the id bounds the key too.
            let id_floor = |c: &Condition| match c {
                Condition::Compare(field, ">" | ">=", Literal::Text(x)) if is(field, "Id") => Some(x.to_lowercase()),
                _ => None,
            };
            let (fa, fb) = (keyset_floor(a, canonical), keyset_floor(b, canonical));
            let equal_instant = |c: &Condition| matches!(c, Condition::Compare(f, "=", Literal::DateTime(_)) if is(f, "SystemModstamp"));
            match (fa, fb) {
                (Some((ms, _)), None) if equal_instant(a) => Some((ms, id_floor(b).unwrap_or_default())),
                (None, Some((ms, _))) if equal_instant(b) => Some((ms, id_floor(a).unwrap_or_default())),
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            }
        }
        Condition::Or(a, b) => Some(keyset_floor(a, canonical)?.min(keyset_floor(b, canonical)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::soql;
    use chrono::{DateTime, Utc};

    fn canonical(name: &str) -> Option<&'static str> {
        ["Id", "SystemModstamp", "Email", "LastName"].into_iter().find(|f| f.eq_ignore_ascii_case(name))
    }

    fn condition(soql_text: &str) -> (Option<Condition>, Vec<OrderKey>) {
        let q = soql::parse(soql_text).unwrap();
        (q.condition, q.order)
    }

    #[test]
    fn the_keyset_condition_starts_the_walk_at_its_instant() {
        let (c, order) = condition(
            "SELECT Id FROM Contact WHERE (SystemModstamp > 2024-01-01T00:00:00Z OR (SystemModstamp = 2024-01-01T00:00:00Z AND Id > '003')) AND LastName != null ORDER BY SystemModstamp, Id LIMIT 5",
        );
        let at: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let plan = RecordIndex::default().plan(c.as_ref(), &order, &canonical);
        assert!(
            matches!(plan, Scan::Modstamp(Some((ms, ref id))) if ms == at.timestamp_millis() && id == "003"),
            "{plan:?}"
        );
    }

    #[test]
    fn an_or_with_an_unbounded_side_walks_from_the_start() {
        let (c, order) = condition(
            "SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00Z OR LastName = 'x' ORDER BY systemmodstamp, id",
        );
        assert!(matches!(RecordIndex::default().plan(c.as_ref(), &order, &canonical), Scan::Modstamp(None)));
    }

    #[test]
    fn other_orders_sort_everything_and_indexed_equalities_use_the_index() {
        let (c, order) = condition("SELECT Id FROM Contact WHERE LastName = 'x' ORDER BY SystemModstamp DESC");
        assert!(matches!(RecordIndex::default().plan(c.as_ref(), &order, &canonical), Scan::Full));
        let mut index = RecordIndex::default();
        index.by_value.insert("Email", HashMap::new());
        let (c, order) = condition("SELECT Id FROM Contact WHERE Email IN ('A@x.com', 'b@x.com') ORDER BY Id");
        assert!(matches!(index.plan(c.as_ref(), &order, &canonical), Scan::Ids(ids) if ids.is_empty()));
        // Ids are keys: the query reads exactly the records named.
        let (c, order) = condition("SELECT Id FROM Contact WHERE Id IN ('003A', '003B') ORDER BY Id");
        let plan = index.plan(c.as_ref(), &order, &canonical);
        assert!(matches!(&plan, Scan::Ids(ids) if ids.iter().eq(["003A", "003B"])), "{plan:?}");
    }
}
