//! `parse-webhook`: Salesforce cannot sign what it sends, so the host authenticates each delivery
//! with the workspace's own secret (the `X-Webhook-Secret` header, or the URL of an Outbound
//! Message) and hands it over marked `x-crmhost-verified: workspace-secret` (a header only the host
//! can set). Two shapes arrive: the small JSON an Apex trigger or a Flow posts, and the SOAP
//! notification of an Outbound Message. Each names records to pull; nothing else is trusted.

use crmhost_sdk::prelude::*;
use serde::Deserialize;

/// Set by the host after it checked the workspace's secret; stripped from what CRMs send.
const VERIFIED: (&str, &str) = ("x-crmhost-verified", "workspace-secret");

/// The XML Schema instance namespace (`xsi:type` names an Outbound Message's sObject).
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The JSON an Apex trigger or Flow posts.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Callout {
    #[serde(default)]
    organization_id: Option<String>,
    records: Vec<CalloutRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalloutRecord {
    /// The sObject's API name (`Contact`, `Opportunity`, …).
    object: String,
    /// The record id.
    id: String,
    /// `created`, `updated` (default), `deleted` or `undeleted`.
    #[serde(default)]
    change: Option<String>,
}

fn header<'a>(request: &'a WebhookRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Parses a delivery the host has authenticated.
pub fn parse_webhook(request: WebhookRequest) -> Result<Vec<ChangeEvent>> {
    if header(&request, VERIFIED.0) != Some(VERIFIED.1) {
        return Err(AdapterError::unauthorized(
            "Salesforce deliveries are taken only at the workspace's webhook URL, with its secret",
        ));
    }
    let xml = header(&request, "content-type").is_some_and(|t| t.contains("xml"))
        || request.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    if xml { outbound_message(&request.body) } else { callout(&request.body) }
}

fn callout(body: &[u8]) -> Result<Vec<ChangeEvent>> {
    let callout: Callout = serde_json::from_slice(body).map_err(|e| {
        AdapterError::invalid(format!(
            "the body is not {{\"organizationId\": \"00D…\", \"records\": [{{\"object\": \"Contact\", \"id\": \"003…\"}}]}}: {e}"
        ))
    })?;
    let account = callout.organization_id.unwrap_or_default();
    callout
        .records
        .into_iter()
        .filter_map(|r| {
            let entity = entity_of(&r.object)?;
            let kind = match r.change.as_deref().unwrap_or("updated") {
                "created" => ChangeKind::Created,
                "deleted" => ChangeKind::Deleted,
                "undeleted" => ChangeKind::Restored,
                _ => ChangeKind::Updated,
            };
            Some(Ok(change(&account, entity, r.id, kind, None)))
        })
        .collect()
}

/// An Outbound Message: `notifications` with the org id and one `Notification` per record, each
/// with its own id (Salesforce resends it until acknowledged, so it de-duplicates).
fn outbound_message(body: &[u8]) -> Result<Vec<ChangeEvent>> {
    let text = std::str::from_utf8(body).map_err(|_| AdapterError::invalid("the Outbound Message is not UTF-8"))?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| AdapterError::invalid(format!("the Outbound Message is not XML: {e}")))?;
    let notifications = doc
        .descendants()
        .find(|n| n.has_tag_name("notifications"))
        .ok_or_else(|| AdapterError::invalid("no <notifications> in the Outbound Message"))?;
    let account = child_text(notifications, "OrganizationId").unwrap_or_default();
    let mut events = Vec::new();
    for notification in notifications.children().filter(|n| n.has_tag_name("Notification")) {
        let Some(sobject) = notification.children().find(|n| n.has_tag_name("sObject")) else { continue };
        let object = sobject.attribute((XSI, "type")).map(|t| t.rsplit(':').next().unwrap_or(t)).unwrap_or_default();
        let (Some(entity), Some(id)) = (entity_of(object), child_text(sobject, "Id")) else { continue };
        let event_id = child_text(notification, "Id");
        events.push(change(&account, entity, id, ChangeKind::Updated, event_id));
    }
    Ok(events)
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.children().find(|n| n.has_tag_name(name)).and_then(|n| n.text()).map(|t| t.trim().to_owned())
}

fn entity_of(object: &str) -> Option<&'static str> {
    ["contact", "lead", "account", "opportunity", "campaign", "campaign_member", "task"]
        .into_iter()
        .find(|e| crate::objects::sobject(e).is_ok_and(|o| o.eq_ignore_ascii_case(object)))
}

fn change(account: &str, entity: &str, crm_id: String, kind: ChangeKind, event_id: Option<String>) -> ChangeEvent {
    ChangeEvent { account_id: account.to_owned(), entity: entity.to_owned(), crm_id, kind, occurred_at: None, event_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: &str, content_type: &str, verified: bool) -> WebhookRequest {
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        if verified {
            headers.push((VERIFIED.0.to_owned(), VERIFIED.1.to_owned()));
        }
        WebhookRequest {
            method: "POST".to_owned(),
            url: "https://crm.example.com/api/v1/webhooks/salesforce/workspaces/w1".to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
            received_at_ms: 0,
        }
    }

    #[test]
    fn an_apex_callout_names_records_to_pull() {
        let body = r#"{"organizationId": "00D5g000004SIMAEAW", "records": [
            {"object": "Opportunity", "id": "0065g00000AAAAAAAA"},
            {"object": "Contact", "id": "0035g00000BBBBBBBB", "change": "deleted"},
            {"object": "Case", "id": "5005g00000CCCCCCCC"}]}"#;
        let events = parse_webhook(delivery(body, "application/json", true)).unwrap();
        assert_eq!(events.len(), 2, "an object this adapter does not sync is skipped");
        assert_eq!((events[0].entity.as_str(), events[0].crm_id.as_str()), ("opportunity", "0065g00000AAAAAAAA"));
        assert_eq!(events[0].account_id, "00D5g000004SIMAEAW");
        assert!(matches!(events[1].kind, ChangeKind::Deleted));
    }

    #[test]
    fn an_outbound_message_is_read_with_its_notification_ids() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000004SIMAEAW</OrganizationId>
   <ActionId>04k5g000000SIMAAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://x.my.salesforce.com/services/Soap/c/62.0/00D5g000004SIMA</EnterpriseUrl>
   <PartnerUrl>https://x.my.salesforce.com/services/Soap/u/62.0/00D5g000004SIMA</PartnerUrl>
   <Notification>
    <Id>04l5g00000000001AAA</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0035g00000BBBBBBBB</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;
        let events = parse_webhook(delivery(body, "text/xml; charset=utf-8", true)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].entity, "contact");
        assert_eq!(events[0].crm_id, "0035g00000BBBBBBBB");
        assert_eq!(events[0].event_id.as_deref(), Some("04l5g00000000001AAA"));
        assert_eq!(events[0].account_id, "00D5g000004SIMAEAW");
    }

    #[test]
    fn a_delivery_the_host_did_not_authenticate_is_refused() {
        let body = r#"{"records": [{"object": "Contact", "id": "003"}]}"#;
        let refused = parse_webhook(delivery(body, "application/json", false)).unwrap_err();
        assert!(matches!(refused, AdapterError::Unauthorized(_)), "{refused:?}");
        assert!(parse_webhook(delivery("{", "application/json", true)).is_err());
        assert!(parse_webhook(delivery("<a>", "text/xml", true)).is_err());
    }
}
