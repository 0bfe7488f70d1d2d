//! Fault and limit knobs, settable at start and at run time (`POST /__sim/knobs`).

use serde::{Deserialize, Serialize};

/// Everything a test can turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added to every API response.
    pub latency_ms: u64,
    /// Fraction (0 to 1) of API requests answered with a 5xx in the CRM's own shape.
    pub failure_rate: f64,
    /// Answer every API request with the CRM's rate-limit error.
    pub force_rate_limit: bool,
    /// Salesforce access-token lifetime (the session timeout; Salesforce does not send `expires_in`).
    pub salesforce_token_ttl_secs: u64,
    /// HubSpot access-token lifetime (`expires_in`).
    pub hubspot_token_ttl_secs: u64,
    /// Salesforce refresh-token rotation (an org setting).
    pub refresh_token_rotation: bool,
    /// Authorize endpoints redirect with `error=access_denied` instead of a code.
    pub deny_authorization: bool,
    /// Salesforce daily API request allocation.
    pub salesforce_daily_limit: u64,
    /// Records per SOQL query batch (Salesforce varies it between 200 and 2000).
    pub salesforce_query_batch_size: usize,
    /// How long a Bulk API 2.0 job stays `InProgress` after its upload (emulator clock), in ms.
    pub salesforce_bulk_processing_ms: u64,
    /// HubSpot requests per rolling 10 s per account (hub), shared by all its tokens.
    pub hubspot_ten_second_limit: u32,
    /// HubSpot search requests per second per token.
    pub hubspot_search_per_second: u32,
    /// HubSpot daily limit (private-app style); `None` = no daily cap, as for OAuth apps.
    pub hubspot_daily_limit: Option<u64>,
    /// HubSpot grants the `optional_scope`s an app asks for (off: the account lacks them).
    pub hubspot_grants_optional_scopes: bool,
    /// Pipedrive requests per rolling 2 s per token (the burst limit; 80 is the Essential plan's).
    pub pipedrive_two_second_limit: u32,
    /// Pipedrive access-token lifetime (`expires_in`).
    pub pipedrive_token_ttl_secs: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            failure_rate: 0.0,
            force_rate_limit: false,
            salesforce_token_ttl_secs: 7_200,
            hubspot_token_ttl_secs: 1_800,
            refresh_token_rotation: false,
            deny_authorization: false,
            salesforce_daily_limit: 100_000,
            salesforce_query_batch_size: 2_000,
            salesforce_bulk_processing_ms: 0,
            hubspot_ten_second_limit: 100,
            hubspot_search_per_second: 4,
            hubspot_daily_limit: None,
            hubspot_grants_optional_scopes: true,
            pipedrive_two_second_limit: 80,
            pipedrive_token_ttl_secs: 3_599,
        }
    }
}

impl Knobs {
    /// Checks values are in range.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err("failure_rate must be between 0 and 1".to_owned());
        }
        if !(1..=2_000).contains(&self.salesforce_query_batch_size) {
            return Err("salesforce_query_batch_size must be between 1 and 2000".to_owned());
        }
        if self.hubspot_ten_second_limit == 0
            || self.hubspot_search_per_second == 0
            || self.pipedrive_two_second_limit == 0
        {
            return Err("rate limits must be at least 1".to_owned());
        }
        Ok(())
    }
}
