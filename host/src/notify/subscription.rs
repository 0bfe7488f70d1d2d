//! What an endpoint receives: a set of event types, narrowed by an optional filter on the event's
//! data (integration, entity, and for record changes a field that changed, optionally to a value:
//! "tell me when an Opportunity enters Needs Legal Review").

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::event::{Event, EventType};
use crate::domain::{EntityName, FieldName, PluginSlug};

/// A condition on an event's `data`; every part given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only events of this integration (`data.integration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "salesforce")]
    pub integration: Option<PluginSlug>,
    /// Only events about this entity (`data.entity`); not with `integration.*` types, which have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "opportunity")]
    pub entity: Option<EntityName>,
    /// Only `record.changed_from_crm` events whose `changed_fields` include this workspace field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "stage")]
    pub field: Option<FieldName>,
    /// With `field`: only when its new value is exactly this (a string, number, boolean or null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = scalar_schema)]
    pub equals: Option<Json>,
}

/// `equals`'s schema: a string, number, boolean or null (what [`Subscription::new`] accepts).
fn scalar_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("With `field`: only when its new value is exactly this."))
        .examples([serde_json::json!("Needs Legal Review")])
        .build();
    Schema::OneOf(one_of)
}

/// An endpoint's subscription, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    events: Vec<EventType>,
    filter: Option<EventFilter>,
}

impl Subscription {
    /// Checks a subscription, saying what is wrong with a bad one.
    pub fn new(mut events: Vec<EventType>, filter: Option<EventFilter>) -> Result<Self, String> {
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(format!("`events` is empty: name at least one of {}", subscribable()));
        }
        if events.contains(&EventType::Ping) {
            return Err("`ping` is not subscribed to: POST …/webhook-endpoints/{id}/ping sends one".to_owned());
        }
        let filter = filter.filter(|f| *f != EventFilter::default());
        if let Some(f) = &filter {
            check_filter(&events, f)?;
        }
        Ok(Self { events, filter })
    }

    /// The event types, sorted.
    pub fn events(&self) -> &[EventType] {
        &self.events
    }

    /// The filter, if any.
    pub fn filter(&self) -> Option<&EventFilter> {
        self.filter.as_ref()
    }

    /// Whether an event goes to this subscription's endpoint.
    pub fn matches(&self, event: &Event) -> bool {
        self.events.contains(&event.kind) && self.filter.as_ref().is_none_or(|f| filter_matches(f, event))
    }
}

fn subscribable() -> String {
    EventType::SUBSCRIBABLE.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
}

fn check_filter(events: &[EventType], f: &EventFilter) -> Result<(), String> {
    let entityless = [EventType::IntegrationNeedsReauth, EventType::IntegrationError];
    if f.entity.is_some() && events.iter().any(|e| entityless.contains(e)) {
        return Err(
            "`filter.entity`: `integration.*` events have no entity; subscribe to them on another endpoint".to_owned()
        );
    }
    if f.field.is_some() && events != [EventType::RecordChangedFromCrm] {
        return Err(
            "`filter.field` applies to `record.changed_from_crm` events only: make that the one event type".to_owned()
        );
    }
    match &f.equals {
        Some(_) if f.field.is_none() => {
            Err("`filter.equals` needs `filter.field`: the field whose value it is".to_owned())
        }
        Some(Json::Array(_) | Json::Object(_)) => {
            Err("`filter.equals`: use a string, number, boolean or null".to_owned())
        }
        _ => Ok(()),
    }
}

fn filter_matches(f: &EventFilter, event: &Event) -> bool {
    let data = &event.data;
    let text_is = |key: &str, want: &str| data.get(key).and_then(Json::as_str) == Some(want);
    if f.integration.as_ref().is_some_and(|slug| !text_is("integration", slug.as_str())) {
        return false;
    }
    if f.entity.as_ref().is_some_and(|entity| !text_is("entity", entity.as_str())) {
        return false;
    }
    let Some(field) = &f.field else { return true };
    let changed = data
        .get("changed_fields")
        .and_then(Json::as_array)
        .is_some_and(|fields| fields.iter().any(|name| name.as_str() == Some(field.as_str())));
    changed && f.equals.as_ref().is_none_or(|want| data.get("values").and_then(|v| v.get(field.as_str())) == Some(want))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::WorkspaceId;

    fn event(kind: EventType, data: Json) -> Event {
        let mut e = Event::ping(&WorkspaceId::parse("w1").unwrap(), "x");
        e.kind = kind;
        e.data = data.as_object().unwrap().clone();
        e
    }

    fn filter(v: Json) -> Option<EventFilter> {
        Some(serde_json::from_value(v).unwrap())
    }

    fn stage_change(stage: &str, entity: &str) -> Event {
        event(
            EventType::RecordChangedFromCrm,
            json!({"integration": "salesforce", "entity": entity, "changed_fields": ["stage", "amount"],
                   "values": {"stage": stage, "amount": 5}}),
        )
    }

    #[test]
    fn a_field_condition_matches_only_a_change_of_that_field_to_that_value() {
        let sub = Subscription::new(
            vec![EventType::RecordChangedFromCrm],
            filter(json!({"entity": "opportunity", "field": "stage", "equals": "Needs Legal Review"})),
        )
        .unwrap();
        assert!(sub.matches(&stage_change("Needs Legal Review", "opportunity")));
        assert!(!sub.matches(&stage_change("Closed Won", "opportunity")));
        assert!(!sub.matches(&stage_change("Needs Legal Review", "contact")));
        let other_field = event(
            EventType::RecordChangedFromCrm,
            json!({"entity": "opportunity", "changed_fields": ["amount"], "values": {"amount": 5, "stage": "Needs Legal Review"}}),
        );
        assert!(!sub.matches(&other_field), "the stage did not change, so it did not enter the stage");
        let deleted = event(
            EventType::RecordChangedFromCrm,
            json!({"entity": "opportunity", "change": "deleted", "changed_fields": [], "values": {}}),
        );
        assert!(!sub.matches(&deleted));
    }

    #[test]
    fn types_and_integration_narrow_what_an_endpoint_gets() {
        let sub = Subscription::new(
            vec![EventType::SyncFailed, EventType::SyncCompleted, EventType::SyncFailed],
            filter(json!({"integration": "hubspot"})),
        )
        .unwrap();
        assert_eq!(sub.events(), [EventType::SyncCompleted, EventType::SyncFailed]);
        assert!(sub.matches(&event(EventType::SyncFailed, json!({"integration": "hubspot"}))));
        assert!(!sub.matches(&event(EventType::SyncFailed, json!({"integration": "salesforce"}))));
        assert!(!sub.matches(&event(EventType::ConflictDetected, json!({"integration": "hubspot"}))));
        let unfiltered = Subscription::new(vec![EventType::ConflictDetected], filter(json!({}))).unwrap();
        assert_eq!(unfiltered.filter(), None, "an empty filter is no filter");
    }

    #[test]
    fn a_subscription_that_could_never_match_is_refused_with_the_reason() {
        let cases = [
            (vec![], None, "`events` is empty"),
            (vec![EventType::Ping], None, "`ping` is not subscribed"),
            (vec![EventType::SyncCompleted], filter(json!({"field": "stage"})), "`filter.field` applies"),
            (vec![EventType::RecordChangedFromCrm], filter(json!({"equals": "x"})), "needs `filter.field`"),
            (vec![EventType::RecordChangedFromCrm], filter(json!({"field": "stage", "equals": [1]})), "use a string"),
            (vec![EventType::IntegrationError], filter(json!({"entity": "contact"})), "have no entity"),
        ];
        for (events, filter, expected) in cases {
            let err = Subscription::new(events, filter).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(serde_json::from_value::<EventFilter>(json!({"entity": "Bad Name"})).is_err());
        assert!(serde_json::from_value::<EventFilter>(json!({"stage": "x"})).is_err(), "unknown keys are refused");
    }
}
