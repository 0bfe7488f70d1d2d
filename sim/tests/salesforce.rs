//! The Salesforce emulator over loopback HTTP: OAuth, REST, SOQL, collections, limits.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const V: &str = "/services/data/v62.0";

async fn api(sim: &crm_sim::SimHandle) -> (reqwest::Client, String, String) {
    let tokens = salesforce_tokens(sim).await;
    (client(), tokens["instance_url"].as_str().unwrap().to_owned(), tokens["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_web_server_flow_returns_exactly_the_reference_token_response() {
    let sim = start().await;
    let tokens = salesforce_tokens(&sim).await;
    let base = sim.salesforce_url().unwrap();

    assert!(tokens.get("expires_in").is_none(), "Salesforce sends no expires_in");
    assert_eq!(tokens["instance_url"], base);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "api refresh_token");
    let id = tokens["id"].as_str().unwrap();
    let parts: Vec<&str> = id.rsplitn(3, '/').collect();
    assert!(
        id.starts_with(&format!("{base}/id/")) && parts[1].starts_with("00D") && parts[0].starts_with("005"),
        "{id}"
    );
    let issued_at = tokens["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13, "issued_at is epoch milliseconds as a string");
    // signature = base64(HMAC-SHA256(client_secret, id + issued_at))
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{id}{issued_at}").as_bytes());
    assert_eq!(tokens["signature"], base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert!(tokens["refresh_token"].is_string());
}

#[tokio::test]
async fn pkce_codes_and_client_credentials_are_checked() {
    let sim = start().await;
    let base = sim.salesforce_url().unwrap();
    let authorize_url = format!(
        "{base}/services/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&code_challenge={}",
        urlencode(REDIRECT),
        challenge(VERIFIER)
    );
    let exchange = |code: String, verifier: Option<&'static str>, secret: &'static str| {
        let base = base.clone();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("client_id", CLIENT_ID.to_owned()),
                ("client_secret", secret.to_owned()),
                ("redirect_uri", REDIRECT.to_owned()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_owned()));
            }
            let r = client().post(format!("{base}/services/oauth2/token")).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let code = authorize(&authorize_url).await["code"].clone();
    assert_eq!(
        exchange(code, None, CLIENT_SECRET).await,
        (400, json!({"error": "invalid_grant", "error_description": "authentication failure"}))
    );
    let code = authorize(&authorize_url).await["code"].clone();
    assert_eq!(exchange(code, Some("wrong-verifier"), CLIENT_SECRET).await.1["error"], "invalid_request");
    let code = authorize(&authorize_url).await["code"].clone();
    assert_eq!(exchange(code.clone(), Some(VERIFIER), "bad-secret").await.1["error"], "invalid_client");
    let code = authorize(&authorize_url).await["code"].clone();
    assert_eq!(exchange(code.clone(), Some(VERIFIER), CLIENT_SECRET).await.0, 200);
    assert_eq!(exchange(code, Some(VERIFIER), CLIENT_SECRET).await.1["error"], "invalid_grant", "codes are single-use");

    sim.sim().update_knobs(|k| k.deny_authorization = true).unwrap();
    let params = authorize(&authorize_url).await;
    assert_eq!(params["error"], "access_denied");
}

#[tokio::test]
async fn refresh_rotation_revokes_the_whole_chain_when_an_old_token_is_reused() {
    let sim = start().await;
    let base = sim.salesforce_url().unwrap();
    let tokens = salesforce_tokens(&sim).await;
    let refresh = |token: String| {
        let base = base.clone();
        async move {
            let r = client()
                .post(format!("{base}/services/oauth2/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let original = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Without rotation the same refresh token works again and none comes back.
    let (status, body) = refresh(original.clone()).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none() && body.get("expires_in").is_none());
    assert_eq!(refresh(original.clone()).await.0, 200);

    sim.sim().update_knobs(|k| k.refresh_token_rotation = true).unwrap();
    let (_, rotated) = refresh(original.clone()).await;
    let newer = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(newer, original);
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let me = client().get(format!("{base}{V}/limits")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status(), 200);

    // Reusing the rotated-out token fails and takes the chain with it.
    assert_eq!(
        refresh(original).await,
        (400, json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}))
    );
    assert_eq!(refresh(newer).await.0, 400);
    let revoked = client().get(format!("{base}{V}/limits")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(revoked.status(), 401);
}

#[tokio::test]
async fn revoked_and_expired_sessions_answer_401_invalid_session_id() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}{V}/sobjects");
    assert_eq!(http.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);

    let introspect = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/services/oauth2/introspect"))
                .form(&[("token", token.as_str()), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(introspect(token.clone()).await["active"], true);

    let revoked = http.post(format!("{base}/services/oauth2/revoke")).form(&[("token", &token)]).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(introspect(token).await, json!({"active": false}));

    let (_, _, fresh) = api(&sim).await;
    sim.sim().clock.advance(chrono::Duration::hours(3));
    assert_eq!(http.get(&url).bearer_auth(&fresh).send().await.unwrap().status(), 401, "sessions expire");
}

#[tokio::test]
async fn identity_and_userinfo_describe_the_user() {
    let sim = start().await;
    let tokens = salesforce_tokens(&sim).await;
    let token = tokens["access_token"].as_str().unwrap();
    let identity: Value =
        client().get(tokens["id"].as_str().unwrap()).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(identity["organization_id"], crm_sim::salesforce::ORG_ID);
    assert!(identity["urls"]["rest"].as_str().unwrap().contains("{version}"));
    let base = sim.salesforce_url().unwrap();
    let info: Value = client()
        .get(format!("{base}/services/oauth2/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], crm_sim::salesforce::USERNAME);
}

#[tokio::test]
async fn describe_reports_the_flags_clients_read() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let versions: Value = http.get(format!("{base}/services/data/")).send().await.unwrap().json().await.unwrap();
    assert!(versions.as_array().unwrap().iter().any(|v| v["version"] == "62.0" && v["url"] == "/services/data/v62.0"));

    let response = http.get(format!("{base}{V}/sobjects/Contact/describe")).bearer_auth(&token).send().await.unwrap();
    assert!(response.headers()["sforce-limit-info"].to_str().unwrap().starts_with("api-usage="));
    let describe: Value = response.json().await.unwrap();
    let field = |name: &str| describe["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap().clone();
    let email = field("Email");
    assert_eq!(
        (email["type"].as_str(), email["idLookup"].as_bool(), email["externalId"].as_bool(), email["unique"].as_bool()),
        (Some("email"), Some(true), Some(false), Some(false))
    );
    let ext = field("External_Id__c");
    assert_eq!(
        (ext["externalId"].as_bool(), ext["unique"].as_bool(), ext["custom"].as_bool()),
        (Some(true), Some(true), Some(true))
    );
    let last = field("LastName");
    assert_eq!(
        (last["nillable"].as_bool(), last["createable"].as_bool(), last["defaultedOnCreate"].as_bool()),
        (Some(false), Some(true), Some(false))
    );
    assert_eq!(field("SystemModstamp")["createable"], false);
    assert_eq!(describe["keyPrefix"], "003");

    let missing = http.get(format!("{base}{V}/sobjects/Widget__c/describe")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let old = http.get(format!("{base}/services/data/v12.0/sobjects")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(old.status(), 404);
}

#[tokio::test]
async fn single_record_crud_and_lookups_by_external_id_and_email() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let created = http
        .post(format!("{base}{V}/sobjects/Contact/")) // trailing slash, as simple-salesforce sends
        .bearer_auth(&token)
        .json(&json!({"LastName": "Lee", "Email": "ann@example.com", "External_Id__c": "k1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!((created["success"].as_bool(), created["errors"].clone()), (Some(true), json!([])));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("003") && id.len() == 18);

    let record: Value = http
        .get(format!("{base}{V}/sobjects/Contact/{id}?fields=Email,LastName"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["attributes"]["type"], "Contact");
    assert_eq!((record["Email"].as_str(), record["LastName"].as_str()), (Some("ann@example.com"), Some("Lee")));

    let patched = http
        .patch(format!("{base}{V}/sobjects/Contact/{id}"))
        .bearer_auth(&token)
        .json(&json!({"Title": "CTO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);

    // Upsert by external id: an update answers 200 created:false, a new key 201 created:true.
    let upsert = |key: &'static str, body: Value| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let r = http
                .patch(format!("{base}{V}/sobjects/Contact/External_Id__c/{key}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = upsert("k1", json!({"Title": "CEO"})).await;
    assert_eq!((status, body["created"].as_bool(), body["id"].as_str()), (200, Some(false), Some(id.as_str())));
    let (status, body) = upsert("k2", json!({"LastName": "Kim"})).await;
    assert_eq!((status, body["created"].as_bool()), (201, Some(true)));

    // By Email (idLookup, case-insensitive); two matches answer 300 with both URLs.
    let by_email =
        http.get(format!("{base}{V}/sobjects/Contact/Email/ANN@example.com")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(by_email.status(), 200);
    http.post(format!("{base}{V}/sobjects/Contact"))
        .bearer_auth(&token)
        .json(&json!({"LastName": "Twin", "Email": "ann@example.com"}))
        .send()
        .await
        .unwrap();
    let ambiguous =
        http.get(format!("{base}{V}/sobjects/Contact/Email/ann@example.com")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ambiguous.status(), 300);
    assert_eq!(ambiguous.json::<Value>().await.unwrap().as_array().unwrap().len(), 2);

    let not_key = http.get(format!("{base}{V}/sobjects/Contact/Title/CEO")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(not_key.json::<Value>().await.unwrap()[0]["errorCode"], "INVALID_FIELD");

    let deleted = http.delete(format!("{base}{V}/sobjects/Contact/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = http.get(format!("{base}{V}/sobjects/Contact/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(
        gone.json::<Value>().await.unwrap(),
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
}

#[tokio::test]
async fn create_errors_have_salesforce_codes_and_fields() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let post = |body: Value| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let r =
                http.post(format!("{base}{V}/sobjects/Contact")).bearer_auth(&token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        post(json!({"FirstName": "A"})).await,
        (
            400,
            json!([{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}])
        )
    );
    assert_eq!(
        post(json!({"LastName": "A", "Email": "not-an-email"})).await.1[0]["errorCode"],
        "INVALID_EMAIL_ADDRESS"
    );
    assert_eq!(post(json!({"LastName": "A", "Foo__c": 1})).await.1[0]["errorCode"], "INVALID_FIELD");
}

/// `POST sobjects/{object}`: the status and the answer.
async fn create_sobject(http: &reqwest::Client, base: &str, token: &str, object: &str, body: Value) -> (u16, Value) {
    let r = http.post(format!("{base}{V}/sobjects/{object}")).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn lookups_name_live_parents_and_soql_reaches_them_by_relationship() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let post = |object: &'static str, body: Value| create_sobject(&http, &base, &token, object, body);
    let query = |soql: &'static str| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let r =
                http.get(format!("{base}{V}/query")).query(&[("q", soql)]).bearer_auth(&token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, acme) = post("Account", json!({"Name": "Acme"})).await;
    let acme = acme["id"].as_str().unwrap().to_owned();
    let (status, ann) = post("Contact", json!({"LastName": "Ann", "AccountId": acme})).await;
    assert_eq!(status, 201, "{ann}");
    post("Contact", json!({"LastName": "Bob"})).await;

    let (status, wrong) = post("Contact", json!({"LastName": "C", "AccountId": ann["id"]})).await;
    assert_eq!((status, wrong[0]["errorCode"].as_str()), (400, Some("FIELD_INTEGRITY_EXCEPTION")));
    assert_eq!(wrong[0]["fields"], json!(["AccountId"]));
    assert_eq!(post("Contact", json!({"LastName": "C", "AccountId": "x"})).await.1[0]["errorCode"], "MALFORMED_ID");
    let missing = post("Contact", json!({"LastName": "C", "AccountId": "001000000000000AAA"})).await.1;
    assert_eq!(missing[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
    let in_collection = http
        .post(format!("{base}{V}/composite/sobjects"))
        .bearer_auth(&token)
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "LastName": "D", "AccountId": acme},
            {"attributes": {"type": "Contact"}, "LastName": "E", "AccountId": "001000000000000AAA"},
        ]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(in_collection[0]["success"], true);
    assert_eq!(in_collection[1]["errors"][0]["statusCode"], "INVALID_CROSS_REFERENCE_KEY");

    let (status, rows) = query(
        "SELECT LastName, Account.Name, AccountId FROM Contact WHERE LastName IN ('Ann','Bob') ORDER BY LastName",
    )
    .await;
    assert_eq!(status, 200, "{rows}");
    let records = rows["records"].as_array().unwrap();
    assert_eq!(records[0]["Account"]["Name"], "Acme");
    assert_eq!(records[0]["Account"]["attributes"]["type"], "Account");
    assert_eq!(records[0]["AccountId"], json!(acme));
    assert_eq!(records[1]["Account"], Value::Null, "an empty lookup reads as a null parent");
    let (_, by_parent) = query("SELECT LastName FROM Contact WHERE Account.Name = 'acme' ORDER BY LastName").await;
    let names: Vec<&str> =
        by_parent["records"].as_array().unwrap().iter().map(|r| r["LastName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ann", "D"], "a parent's field filters, case-insensitively");
    let (status, bad) = query("SELECT Boss.Name FROM Contact").await;
    assert_eq!((status, bad[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
}

#[tokio::test]
async fn campaigns_hold_each_contact_or_lead_once_and_tasks_name_who_polymorphically() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let post = |object: &'static str, body: Value| create_sobject(&http, &base, &token, object, body);
    let id = |answer: (u16, Value)| {
        assert_eq!(answer.0, 201, "{}", answer.1);
        answer.1["id"].as_str().unwrap().to_owned()
    };
    let spring = id(post("Campaign", json!({"Name": "Spring launch", "Type": "Email"})).await);
    assert!(spring.starts_with("701"));
    let ann = id(post("Contact", json!({"LastName": "Ann"})).await);
    let lee = id(post("Lead", json!({"LastName": "Lee", "Company": "Lee & Co"})).await);
    let acme = id(post("Account", json!({"Name": "Acme"})).await);

    // A member names a contact or a lead, once per campaign; its status defaults to `Sent`.
    let member = id(post("CampaignMember", json!({"CampaignId": spring, "ContactId": ann})).await);
    assert!(member.starts_with("00v"));
    id(post("CampaignMember", json!({"CampaignId": spring, "LeadId": lee, "Status": "Responded"})).await);
    let (status, again) = post("CampaignMember", json!({"CampaignId": spring, "ContactId": ann})).await;
    assert_eq!((status, again[0]["errorCode"].as_str()), (400, Some("DUPLICATE_VALUE")), "{again}");
    assert_eq!(again[0]["message"], "Already a campaign member.");
    let (_, nobody) = post("CampaignMember", json!({"CampaignId": spring})).await;
    assert_eq!(nobody[0]["errorCode"], "REQUIRED_FIELD_MISSING", "{nobody}");
    let (_, no_campaign) = post("CampaignMember", json!({"ContactId": ann})).await;
    assert_eq!(no_campaign[0]["errorCode"], "REQUIRED_FIELD_MISSING", "{no_campaign}");
    let (_, wrong) = post("CampaignMember", json!({"CampaignId": acme, "ContactId": ann})).await;
    assert_eq!(wrong[0]["errorCode"], "FIELD_INTEGRITY_EXCEPTION", "{wrong}");
    {
        let state = sim.sim().salesforce();
        let stored = state.object("CampaignMember").unwrap().live(&member).unwrap();
        assert_eq!(stored.fields["Status"], "Sent");
    }

    // A task's WhoId is a contact or a lead, its WhatId an account, opportunity or campaign.
    let email = json!({"Subject": "Email: Spring launch", "TaskSubtype": "Email", "WhoId": ann, "WhatId": spring,
        "ActivityDate": "2026-03-01"});
    let task = id(post("Task", email).await);
    assert!(task.starts_with("00T"));
    id(post("Task", json!({"Subject": "Call", "WhoId": lee, "WhatId": acme})).await);
    let (_, bad_who) = post("Task", json!({"Subject": "x", "WhoId": acme})).await;
    assert_eq!(
        (bad_who[0]["errorCode"].as_str(), bad_who[0]["fields"].clone()),
        (Some("FIELD_INTEGRITY_EXCEPTION"), json!(["WhoId"]))
    );
    let (_, gone_who) = post("Task", json!({"Subject": "x", "WhoId": "003000000000000AAA"})).await;
    assert_eq!(gone_who[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
    let state = sim.sim().salesforce();
    let stored = state.object("Task").unwrap().live(&task).unwrap();
    assert_eq!(
        (stored.fields["Status"].as_str(), stored.fields["Priority"].as_str()),
        (Some("Not Started"), Some("Normal"))
    );
}

#[tokio::test]
async fn soql_pages_with_relative_next_records_urls_and_filters_for_real() {
    let sim = start().await;
    sim.sim().clock.set("2024-03-01T00:00:00Z".parse().unwrap());
    sim.sim().seed("contact", 450).unwrap();
    sim.sim().update_knobs(|k| k.salesforce_query_batch_size = 200).unwrap();
    let (http, base, token) = api(&sim).await;

    let first: Value = http
        .get(format!("{base}{V}/query/"))
        .query(&[("q", "SELECT Id, Email, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((first["totalSize"].as_u64(), first["done"].as_bool()), (Some(450), Some(false)), "{first}");
    let mut next = first["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/services/data/v62.0/query/"), "relative: {next}");
    let mut seen = first["records"].as_array().unwrap().len();
    let mut pages = 1;
    loop {
        // A repeated `?q=` on a locator request is ignored.
        let page: Value =
            http.get(format!("{base}{next}?q=ignored")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        seen += page["records"].as_array().unwrap_or_else(|| panic!("{page}")).len();
        pages += 1;
        match page["nextRecordsUrl"].as_str() {
            Some(n) => next = n.to_owned(),
            None => {
                assert_eq!(page["done"], true);
                break;
            }
        }
    }
    assert_eq!((seen, pages), (450, 3));

    // Modify two records later, then filter on SystemModstamp with both literal forms.
    sim.sim().clock.set("2024-03-02T12:00:00Z".parse().unwrap());
    // The day-old session has expired with the clock; sign in again.
    let (http, base, token) = api(&sim).await;
    let ids: Vec<String> =
        first["records"].as_array().unwrap()[..2].iter().map(|r| r["Id"].as_str().unwrap().to_owned()).collect();
    for id in &ids {
        http.patch(format!("{base}{V}/sobjects/Contact/{id}"))
            .bearer_auth(&token)
            .json(&json!({"Title": "VP"}))
            .send()
            .await
            .unwrap();
    }
    for literal in ["2024-03-02T00:00:00Z", "2024-03-02T00:00:00.000+00:00"] {
        let soql = format!(
            "SELECT Id, Title, SystemModstamp FROM Contact WHERE SystemModstamp >= {literal} ORDER BY SystemModstamp ASC, Id ASC"
        );
        let result: Value = http
            .get(format!("{base}{V}/query"))
            .query(&[("q", soql)])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got: Vec<&str> = result["records"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "{literal}");
        assert_eq!(result["records"][0]["SystemModstamp"], "2024-03-02T12:00:00.000+0000");
    }

    let limited: Value = http
        .get(format!("{base}{V}/query"))
        .query(&[("q", "SELECT LastName FROM Contact WHERE LastName LIKE 'last1%' AND LastName != 'Last1' ORDER BY LastName DESC LIMIT 3")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        limited["records"].as_array().unwrap().iter().map(|r| r["LastName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Last199", "Last198", "Last197"]);

    let bad = http
        .get(format!("{base}{V}/query"))
        .query(&[("q", "SELECT FROM Contact")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()[0]["errorCode"], "MALFORMED_QUERY");
    let bad_field = http
        .get(format!("{base}{V}/query"))
        .query(&[("q", "SELECT Nope FROM Contact")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_field.json::<Value>().await.unwrap()[0]["errorCode"], "INVALID_FIELD");
}

/// Keyset pages (`ORDER BY SystemModstamp, Id LIMIT n` resumed after the last row) walk the
/// emulator's index; over records that share one instant (ids then decide, compared as SOQL
/// compares them) they return every record once, in the order a full sort gives.
#[tokio::test]
async fn keyset_pages_over_one_instant_return_every_record_once_in_sorted_order() {
    let sim = start().await;
    sim.sim().clock.set("2024-03-01T00:00:00Z".parse().unwrap());
    sim.sim().seed("contact", 730).unwrap();
    sim.sim().clock.set("2024-03-01T00:00:01Z".parse().unwrap());
    sim.sim().seed("contact", 70).unwrap();
    let (http, base, token) = api(&sim).await;
    let query = |soql: String| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let page: Value = http
                .get(format!("{base}{V}/query/"))
                .query(&[("q", soql)])
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["records"].as_array().unwrap_or_else(|| panic!("{page}")).clone()
        }
    };
    let key = |r: &Value| (r["SystemModstamp"].as_str().unwrap().to_owned(), r["Id"].as_str().unwrap().to_owned());
    // The full sort, with a batch size large enough for one answer.
    sim.sim().update_knobs(|k| k.salesforce_query_batch_size = 2000).unwrap();
    let sorted: Vec<(String, String)> = query(
        "SELECT Id, SystemModstamp FROM Contact WHERE LastName != null ORDER BY SystemModstamp, Id LIMIT 2000".into(),
    )
    .await
    .iter()
    .map(key)
    .collect();
    assert_eq!(sorted.len(), 800);
    let mut walked = Vec::new();
    let mut soql = "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id LIMIT 97".to_owned();
    loop {
        let page = query(soql.clone()).await;
        walked.extend(page.iter().map(key));
        let Some((at, id)) = page.last().map(key) else { break };
        let at = at.replace("+0000", "Z");
        soql = format!(
            "SELECT Id, SystemModstamp FROM Contact WHERE (SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > '{id}')) ORDER BY SystemModstamp, Id LIMIT 97"
        );
    }
    assert_eq!(walked, sorted);
}

#[tokio::test]
async fn query_all_includes_deleted_records() {
    let sim = start().await;
    sim.sim().seed("account", 3).unwrap();
    let (http, base, token) = api(&sim).await;
    let q = "SELECT Id, IsDeleted FROM Account";
    let all: Value = http
        .get(format!("{base}{V}/query"))
        .query(&[("q", q)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = all["records"][0]["Id"].as_str().unwrap().to_owned();
    http.delete(format!("{base}{V}/sobjects/Account/{id}")).bearer_auth(&token).send().await.unwrap();
    let live: Value = http
        .get(format!("{base}{V}/query"))
        .query(&[("q", q)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let with_deleted: Value = http
        .get(format!("{base}{V}/queryAll"))
        .query(&[("q", q)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((live["totalSize"].as_u64(), with_deleted["totalSize"].as_u64()), (Some(2), Some(3)));
    assert!(
        with_deleted["records"].as_array().unwrap().iter().any(|r| r["Id"] == id.as_str() && r["IsDeleted"] == true)
    );
}

#[tokio::test]
async fn collections_report_per_record_results_in_order_and_honour_all_or_none() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}{V}/composite/sobjects");
    let records = json!([
        {"attributes": {"type": "Contact"}, "LastName": "One", "Email": "one@example.com"},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLast"},
        {"attributes": {"type": "Contact"}, "LastName": "Three"},
    ]);
    let results: Value = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"allOrNone": false, "records": records}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(results[0]["success"], true);
    assert_eq!(
        results[1],
        json!({"id": null, "success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]})
    );
    assert_eq!(results[2]["success"], true);
    assert_eq!(sim.sim().salesforce().records("Contact").len(), 2);

    let results: Value = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"allOrNone": true, "records": records}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(results[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(results[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(sim.sim().salesforce().records("Contact").len(), 2, "nothing written with allOrNone");

    let too_many: Vec<Value> =
        (0..201).map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("n{i}")})).collect();
    let rejected = http.post(&url).bearer_auth(&token).json(&json!({"records": too_many})).send().await.unwrap();
    assert_eq!(rejected.status(), 400);
    assert_eq!(rejected.json::<Value>().await.unwrap()[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}

#[tokio::test]
async fn collection_upsert_on_email_creates_updates_and_flags_ambiguous_matches() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    for (last, email) in [("A", "a@example.com"), ("B1", "b@example.com"), ("B2", "B@example.com")] {
        http.post(format!("{base}{V}/sobjects/Contact"))
            .bearer_auth(&token)
            .json(&json!({"LastName": last, "Email": email}))
            .send()
            .await
            .unwrap();
    }
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "Email": "A@EXAMPLE.COM", "Title": "Updated"},
        {"attributes": {"type": "Contact"}, "Email": "new@example.com", "LastName": "New"},
        {"attributes": {"type": "Contact"}, "Email": "b@example.com", "Title": "Which?"},
    ]});
    let results: Value = http
        .patch(format!("{base}{V}/composite/sobjects/Contact/Email"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((results[0]["success"].as_bool(), results[0]["created"].as_bool()), (Some(true), Some(false)));
    assert_eq!((results[1]["success"].as_bool(), results[1]["created"].as_bool()), (Some(true), Some(true)));
    assert_eq!(results[2]["success"], false);
    assert_eq!(results[2]["errors"][0]["statusCode"], "DUPLICATE_EXTERNAL_ID");

    // Update by id and delete through collections.
    let id = results[1]["id"].as_str().unwrap();
    let updated: Value = http
        .patch(format!("{base}{V}/composite/sobjects"))
        .bearer_auth(&token)
        .json(&json!({"records": [{"attributes": {"type": "Contact"}, "id": id, "Title": "T"}, {"attributes": {"type": "Contact"}, "id": "003000000000000AAA", "Title": "T"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated[0]["success"], true);
    assert_eq!(updated[1]["errors"][0]["statusCode"], "INVALID_CROSS_REFERENCE_KEY");
    let deleted: Value = http
        .delete(format!("{base}{V}/composite/sobjects?ids={id}&allOrNone=false"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted, json!([{"id": id, "success": true, "errors": []}]));
}

#[tokio::test]
async fn the_daily_limit_answers_403_request_limit_exceeded_and_limits_reports_usage() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    sim.sim().update_knobs(|k| k.salesforce_daily_limit = 3).unwrap();
    for _ in 0..3 {
        let ok = http.get(format!("{base}{V}/limits")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(ok.status(), 200);
    }
    let over = http.get(format!("{base}{V}/limits")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(over.status(), 403);
    assert_eq!(over.headers()["sforce-limit-info"], "api-usage=3/3");
    assert_eq!(
        over.json::<Value>().await.unwrap(),
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
}

#[tokio::test]
async fn updated_and_deleted_report_replication_windows() {
    let sim = start().await;
    sim.sim().clock.set("2024-05-01T10:00:00Z".parse().unwrap());
    sim.sim().seed("lead", 2).unwrap();
    let (http, base, token) = api(&sim).await;
    let leads = sim.sim().salesforce().records("Lead");
    let deleted_id = leads[0]["Id"].as_str().unwrap().to_owned();
    sim.sim().clock.set("2024-05-01T11:00:00Z".parse().unwrap());
    http.delete(format!("{base}{V}/sobjects/Lead/{deleted_id}")).bearer_auth(&token).send().await.unwrap();

    let window = [("start", "2024-05-01T09:00:00+00:00"), ("end", "2024-05-01T12:00:30+00:00")];
    let updated: Value = http
        .get(format!("{base}{V}/sobjects/Lead/updated/"))
        .query(&window)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["ids"], json!([leads[1]["Id"]]));
    assert_eq!(updated["latestDateCovered"], "2024-05-01T12:00:00.000+0000");
    let deleted: Value = http
        .get(format!("{base}{V}/sobjects/Lead/deleted/"))
        .query(&window)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deletedRecords"], json!([{"id": deleted_id, "deletedDate": "2024-05-01T11:00:00.000+0000"}]));
    let backwards = http
        .get(format!("{base}{V}/sobjects/Lead/updated"))
        .query(&[("start", "2024-05-02T00:00:00Z"), ("end", "2024-05-01T00:00:00Z")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(backwards.json::<Value>().await.unwrap()[0]["errorCode"], "INVALID_REPLICATION_DATE");
}

#[tokio::test]
async fn knobs_inject_latency_failures_and_forced_limits_and_calls_are_counted() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}{V}/sobjects");
    sim.sim().update_knobs(|k| k.failure_rate = 1.0).unwrap();
    let failed = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    assert_eq!(failed.json::<Value>().await.unwrap()[0]["errorCode"], "SERVER_UNAVAILABLE");

    // Through the admin endpoint, as an external test would.
    let knobs: Value = http
        .post(format!("{base}/__sim/knobs"))
        .json(&json!({"failure_rate": 0.0, "force_rate_limit": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(knobs["force_rate_limit"], true);
    assert_eq!(http.get(&url).bearer_auth(&token).send().await.unwrap().status(), 403);
    http.post(format!("{base}/__sim/knobs"))
        .json(&json!({"force_rate_limit": false, "latency_ms": 150}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(http.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let bad_knob = http.post(format!("{base}/__sim/knobs")).json(&json!({"failure_rate": 3})).send().await.unwrap();
    assert_eq!(bad_knob.status(), 400);

    assert_eq!(sim.sim().call_count("salesforce GET /services/data/{version}/sobjects"), 3);
    assert_eq!(sim.sim().call_count("salesforce POST /services/oauth2/token"), 1);
}
async fn send_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bulk_ingest_jobs_upsert_csv_and_report_successes_failures_and_limits() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let jobs = format!("{base}{V}/jobs/ingest");
    let (status, job) = send_json(
        http.post(&jobs).bearer_auth(&token).json(&json!({"object": "Contact", "operation": "upsert", "externalIdFieldName": "Email", "contentType": "CSV", "lineEnding": "LF"})),
    )
    .await;
    assert_eq!((status, job["state"].as_str()), (200, Some("Open")), "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("750"), "{id}");
    let csv =
        "Email,LastName,FirstName\nann@bulk.example,Ann,\"A, the first\"\nbob@bulk.example,,Bob\nnot-an-email,Cee,C\n";
    let uploaded = http
        .put(format!("{jobs}/{id}/batches"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    // Not complete yet: no results.
    let early = http.get(format!("{jobs}/{id}/successfulResults/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(early.status(), 400);
    let (_, closed) =
        send_json(http.patch(format!("{jobs}/{id}")).bearer_auth(&token).json(&json!({"state": "UploadComplete"})))
            .await;
    assert_eq!(closed["state"], "UploadComplete", "{closed}");
    let (_, done) = send_json(http.get(format!("{jobs}/{id}")).bearer_auth(&token)).await;
    assert_eq!(done["state"], "JobComplete", "{done}");
    assert_eq!(
        (done["numberRecordsProcessed"].as_u64(), done["numberRecordsFailed"].as_u64()),
        (Some(3), Some(2)),
        "{done}"
    );

    let text = |path: &'static str| {
        let (http, url, token) = (http.clone(), format!("{jobs}/{id}/{path}"), token.clone());
        async move { http.get(url).bearer_auth(&token).send().await.unwrap().text().await.unwrap() }
    };
    let successes = text("successfulResults/").await;
    let mut lines = successes.lines();
    assert_eq!(lines.next(), Some("\"sf__Id\",\"sf__Created\",\"Email\",\"LastName\",\"FirstName\""));
    let ann = lines.next().unwrap();
    assert!(
        ann.starts_with("\"003") && ann.contains("\"true\",\"ann@bulk.example\",\"Ann\",\"A, the first\""),
        "{ann}"
    );
    assert_eq!(lines.next(), None);
    let failures = text("failedResults/").await;
    assert!(failures.starts_with("\"sf__Id\",\"sf__Error\",\"Email\""), "{failures}");
    assert!(
        failures.contains("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"),
        "{failures}"
    );
    assert!(failures.contains("INVALID_EMAIL_ADDRESS"), "{failures}");
    assert_eq!(text("unprocessedrecords/").await.trim(), "\"Email\",\"LastName\",\"FirstName\"");
    assert_eq!(sim.sim().salesforce().records("Contact").len(), 1);

    // Upserted again with a change: the same record, updated, not created.
    let (_, again) = send_json(
        http.post(&jobs)
            .bearer_auth(&token)
            .json(&json!({"object": "Contact", "operation": "upsert", "externalIdFieldName": "Email"})),
    )
    .await;
    let again = again["id"].as_str().unwrap().to_owned();
    http.put(format!("{jobs}/{again}/batches"))
        .bearer_auth(&token)
        .body("Email,Title\nANN@bulk.example,CEO\n")
        .send()
        .await
        .unwrap();
    send_json(http.patch(format!("{jobs}/{again}")).bearer_auth(&token).json(&json!({"state": "UploadComplete"})))
        .await;
    let results = http
        .get(format!("{jobs}/{again}/successfulResults/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(results.lines().nth(1).unwrap().contains("\"false\""), "{results}");

    let (_, limits) = send_json(http.get(format!("{base}{V}/limits")).bearer_auth(&token)).await;
    assert_eq!(limits["DailyBulkApiBatches"]["Max"], 15000);
    assert_eq!(limits["DailyBulkApiBatches"]["Remaining"], 14998, "{limits}");
    // An upsert without its key, and a finished job cannot take uploads.
    let (status, refused) =
        send_json(http.post(&jobs).bearer_auth(&token).json(&json!({"object": "Contact", "operation": "upsert"})))
            .await;
    assert_eq!((status, refused[0]["errorCode"].as_str()), (400, Some("INVALIDJOB")));
    let late =
        http.put(format!("{jobs}/{again}/batches")).bearer_auth(&token).body("Email\nx@y.z\n").send().await.unwrap();
    assert_eq!(late.status(), 400);
}

#[tokio::test]
async fn bulk_query_jobs_page_csv_by_locator_after_processing_time() {
    let sim = start().await;
    sim.sim().seed("contact", 5).unwrap();
    let mut knobs = sim.sim().knobs();
    knobs.salesforce_bulk_processing_ms = 60_000;
    sim.sim().set_knobs(knobs).unwrap();
    let (http, base, token) = api(&sim).await;
    let jobs = format!("{base}{V}/jobs/query");
    let soql = "SELECT Id, LastName, Account.Name FROM Contact ORDER BY LastName";
    let (status, job) =
        send_json(http.post(&jobs).bearer_auth(&token).json(&json!({"operation": "query", "query": soql}))).await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (_, waiting) = send_json(http.get(format!("{jobs}/{id}")).bearer_auth(&token)).await;
    assert_eq!(waiting["state"], "InProgress", "the processing time has not passed");
    sim.sim().clock.advance(chrono::Duration::seconds(61));
    let (_, done) = send_json(http.get(format!("{jobs}/{id}")).bearer_auth(&token)).await;
    assert_eq!(
        (done["state"].as_str(), done["numberRecordsProcessed"].as_u64()),
        (Some("JobComplete"), Some(5)),
        "{done}"
    );

    let mut locator = String::new();
    let mut rows = Vec::new();
    loop {
        let mut url = format!("{jobs}/{id}/results?maxRecords=2");
        if !locator.is_empty() {
            url.push_str(&format!("&locator={locator}"));
        }
        let page = http.get(url).bearer_auth(&token).send().await.unwrap();
        let next = page.headers()["sforce-locator"].to_str().unwrap().to_owned();
        let count: usize = page.headers()["sforce-numberofrecords"].to_str().unwrap().parse().unwrap();
        let body = page.text().await.unwrap();
        let mut lines = body.lines();
        assert_eq!(lines.next(), Some("\"Id\",\"LastName\",\"Account.Name\""));
        let page_rows: Vec<String> = lines.map(str::to_owned).collect();
        assert_eq!(page_rows.len(), count);
        rows.extend(page_rows);
        if next == "null" {
            break;
        }
        locator = next;
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    let bad = send_json(
        http.post(&jobs)
            .bearer_auth(&token)
            .json(&json!({"operation": "query", "query": "SELECT Nope__c FROM Contact"})),
    )
    .await;
    assert_eq!((bad.0, bad.1[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")), "{}", bad.1);
}

#[tokio::test]
async fn bulk_v1_jobs_take_json_batches_and_answer_per_record_results_and_queries() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let jobs = format!("{base}/services/async/62.0/job");
    let post = |url: String, body: Value| http.post(url).header("X-SFDC-Session", &token).json(&body);
    let get = |url: String| http.get(url).header("X-SFDC-Session", &token);

    let insert = json!({"operation": "insert", "object": "Contact", "contentType": "JSON"});
    let (status, bad) = send_json(http.post(&jobs).header("X-SFDC-Session", "nope").json(&insert)).await;
    assert_eq!((status, bad["exceptionCode"].as_str()), (400, Some("InvalidSessionId")), "{bad}");
    let upsert =
        json!({"operation": "upsert", "object": "Contact", "externalIdFieldName": "Email", "contentType": "JSON"});
    let (status, job) = send_json(post(jobs.clone(), upsert)).await;
    assert_eq!((status, job["state"].as_str()), (201, Some("Open")), "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let records = json!([{"Email": "v1@bulk.example", "LastName": "One"}, {"Email": "bad", "LastName": "Two"}]);
    let (status, batch) = send_json(post(format!("{jobs}/{job_id}/batch"), records)).await;
    assert_eq!((status, batch["state"].as_str()), (201, Some("Queued")), "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let (_, results) = send_json(get(format!("{jobs}/{job_id}/batch/{batch_id}/result"))).await;
    assert_eq!(
        (results[0]["success"].as_bool(), results[0]["created"].as_bool()),
        (Some(true), Some(true)),
        "{results}"
    );
    assert!(results[0]["id"].as_str().unwrap().starts_with("003"), "{results}");
    assert_eq!(results[1]["success"], false);
    assert_eq!(results[1]["errors"][0]["statusCode"], "INVALID_EMAIL_ADDRESS");
    let (_, closed) = send_json(post(format!("{jobs}/{job_id}"), json!({"state": "Closed"}))).await;
    assert_eq!(closed["state"], "Closed");
    assert_eq!((closed["numberRecordsProcessed"].as_u64(), closed["numberRecordsFailed"].as_u64()), (Some(2), Some(1)));
    let (status, refused) = send_json(post(format!("{jobs}/{job_id}/batch"), json!([]))).await;
    assert_eq!((status, refused["exceptionCode"].as_str()), (400, Some("InvalidJobState")));

    // A query job's batch is its SOQL; it runs once the processing time has passed.
    let mut knobs = sim.sim().knobs();
    knobs.salesforce_bulk_processing_ms = 30_000;
    sim.sim().set_knobs(knobs).unwrap();
    let (_, query) =
        send_json(post(jobs.clone(), json!({"operation": "query", "object": "Contact", "contentType": "JSON"}))).await;
    let query_id = query["id"].as_str().unwrap().to_owned();
    let soql = "SELECT Id, LastName FROM Contact WHERE Email = 'v1@bulk.example'";
    let added = http
        .post(format!("{jobs}/{query_id}/batch"))
        .header("X-SFDC-Session", &token)
        .header("content-type", "text/plain")
        .body(soql)
        .send()
        .await
        .unwrap();
    let batch: Value = added.json().await.unwrap();
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let (_, waiting) = send_json(get(format!("{jobs}/{query_id}/batch/{batch_id}"))).await;
    assert_eq!(waiting["state"], "InProgress", "{waiting}");
    sim.sim().clock.advance(chrono::Duration::seconds(31));
    let (_, listed) = send_json(get(format!("{jobs}/{query_id}/batch"))).await;
    assert_eq!(listed["batchInfo"][0]["state"], "Completed", "{listed}");
    let (_, result_ids) = send_json(get(format!("{jobs}/{query_id}/batch/{batch_id}/result"))).await;
    let result_id = result_ids[0].as_str().unwrap().to_owned();
    let (_, rows) = send_json(get(format!("{jobs}/{query_id}/batch/{batch_id}/result/{result_id}"))).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["LastName"], "One");
    let (_, bad_query) = send_json(
        http.post(format!("{jobs}/{query_id}/batch"))
            .header("X-SFDC-Session", &token)
            .body("SELECT Nope__c FROM Contact"),
    )
    .await;
    assert_eq!(bad_query["exceptionCode"], "InvalidBatch", "{bad_query}");

    let (_, limits) = send_json(http.get(format!("{base}{V}/limits")).bearer_auth(&token)).await;
    assert_eq!(limits["DailyBulkApiBatches"]["Remaining"], 14998, "one per 1.0 batch: {limits}");
}
