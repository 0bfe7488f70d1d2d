//! Sorting a push batch by how each record is matched: by the CRM id the host already knows, or by
//! the value of the match key — with records lacking a key, or repeating one within the batch,
//! rejected up front (two records with one key would otherwise race to create two CRM records).

use std::collections::BTreeSet;

use crate::{AdapterError, PushRecord};

/// How the records of a push batch are matched; indexes are positions in the input.
#[derive(Debug, Default)]
pub struct MatchPlan {
    /// Records carrying a CRM id: update by id.
    pub by_id: Vec<(usize, String)>,
    /// Records to match on the key: the key's trimmed text.
    pub by_key: Vec<(usize, String)>,
    /// Records that cannot be matched, with why.
    pub rejected: Vec<(usize, AdapterError)>,
}

/// Plans the matching of `records` on `match_key` (field names compared case-insensitively, key
/// values case-insensitively for repeats, as both CRMs compare them).
pub fn plan_matches(records: &[PushRecord], match_key: &str) -> MatchPlan {
    let mut plan = MatchPlan::default();
    let mut seen = BTreeSet::new();
    for (i, record) in records.iter().enumerate() {
        if let Some(id) = &record.crm_id {
            plan.by_id.push((i, id.clone()));
            continue;
        }
        let key = record
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(match_key))
            .and_then(|f| f.value.to_text())
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty());
        match key {
            None => plan.rejected.push((
                i,
                AdapterError::invalid_field(match_key, format!("the record has no {match_key} to match on")),
            )),
            Some(key) if !seen.insert(key.to_lowercase()) => plan.rejected.push((
                i,
                AdapterError::duplicate(format!("{match_key} `{key}` appears more than once in this batch"), None),
            )),
            Some(key) => plan.by_key.push((i, key)),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FieldValue, Value};

    fn record(id: Option<&str>, email: Option<&str>) -> PushRecord {
        PushRecord {
            crm_id: id.map(str::to_owned),
            fields: email.map(|e| vec![FieldValue::new("Email", Value::Text(e.to_owned()))]).unwrap_or_default(),
        }
    }

    #[test]
    fn records_are_split_by_id_by_key_and_rejected() {
        let records = [
            record(Some("1"), None),
            record(None, Some(" a@x.com ")),
            record(None, None),
            record(None, Some("A@X.com")),
            record(None, Some("b@x.com")),
        ];
        let plan = plan_matches(&records, "email");
        assert_eq!(plan.by_id, [(0, "1".to_owned())]);
        assert_eq!(plan.by_key, [(1, "a@x.com".to_owned()), (4, "b@x.com".to_owned())]);
        let rejected: Vec<usize> = plan.rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(rejected, [2, 3]);
        assert!(matches!(plan.rejected[1].1, AdapterError::Duplicate(_)));
    }
}
