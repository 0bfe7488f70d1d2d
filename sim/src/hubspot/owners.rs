//! The owners API (`GET /crm/v3/owners`, `GET /crm/v3/owners/{ownerId}`): the account's users
//! as record owners. A record's `hubspot_owner_id` holds an owner's `id`, never its `userId`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::errors::{self, HsError};
use super::objects::Params;
use super::{ExtraHeaders, USER_EMAIL, USER_ID, authorize, with_headers};
use crate::Sim;

/// One owner of the emulated account.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    /// The owner id (what `hubspot_owner_id` holds).
    pub id: &'static str,
    /// The user id behind it (what the token introspection names).
    pub user_id: u64,
    /// Email.
    pub email: &'static str,
    /// First name.
    pub first_name: &'static str,
    /// Last name.
    pub last_name: &'static str,
}

/// The account's owners: the connecting user first, then a second sales rep.
pub const OWNERS: &[Owner] = &[
    Owner { id: "41629779", user_id: USER_ID, email: USER_EMAIL, first_name: "Sim", last_name: "Admin" },
    Owner { id: "41629780", user_id: 45679, email: "rep@crm-sim.example", first_name: "Riley", last_name: "Rep" },
];

/// The owner ids, in order: the options of every `hubspot_owner_id` property.
pub const OWNER_IDS: &[&str] = &["41629779", "41629780"];

impl Owner {
    fn to_json(self) -> Value {
        json!({
            "id": self.id, "email": self.email, "type": "PERSON",
            "firstName": self.first_name, "lastName": self.last_name,
            "userId": self.user_id, "userIdIncludingInactive": self.user_id,
            "createdAt": "2019-12-25T13:01:35.228Z", "updatedAt": "2023-08-22T13:40:26.790Z",
            "archived": false, "teams": [],
        })
    }
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/crm/v3/owners", get(list))
        .route("/crm/v3/owners/", get(list))
        .route("/crm/v3/owners/{owner_id}", get(read))
        .with_state(sim)
}

/// The scope the owners API needs.
const OWNERS_SCOPE: &str = "crm.objects.owners.read";

/// [`authorize`], then 403 MISSING_SCOPES unless the token was granted the owners scope.
fn authorize_owners(sim: &Sim, headers: &HeaderMap) -> Result<ExtraHeaders, HsError> {
    let (token, extra) = authorize(sim, headers, false)?;
    let now = sim.clock.now();
    let granted =
        sim.hubspot().oauth.check_access(&token, now).is_ok_and(|t| t.scopes.iter().any(|s| s == OWNERS_SCOPE));
    if granted { Ok(extra) } else { Err(errors::missing_scope(sim, OWNERS_SCOPE)) }
}

/// `GET /crm/v3/owners?email=`: one page holding every owner (or the one with that email).
async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let extra = match authorize_owners(&sim, &headers) {
        Ok(extra) => extra,
        Err(e) => return e.into_response(),
    };
    let email = Params::new(raw).get("email").map(str::to_lowercase);
    let results: Vec<Value> =
        OWNERS.iter().filter(|o| email.as_deref().is_none_or(|e| o.email == e)).map(|o| o.to_json()).collect();
    with_headers(Json(json!({ "results": results })).into_response(), &extra)
}

/// `GET /crm/v3/owners/{ownerId}?idProperty=id|userId`.
async fn read(
    State(sim): State<Arc<Sim>>,
    Path(owner_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let extra = match authorize_owners(&sim, &headers) {
        Ok(extra) => extra,
        Err(e) => return e.into_response(),
    };
    let by_user = match Params::new(raw).get("idProperty") {
        None | Some("id") => false,
        Some("userId") => true,
        Some(other) => {
            let message = format!("idProperty must be one of [id, userId], got {other}");
            return errors::validation(&sim, message).into_response();
        }
    };
    let found = OWNERS.iter().find(|o| if by_user { o.user_id.to_string() == owner_id } else { o.id == owner_id });
    match found {
        Some(owner) => with_headers(Json(owner.to_json()).into_response(), &extra),
        None => errors::not_found(&sim).into_response(),
    }
}
