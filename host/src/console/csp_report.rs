//! `POST /console/csp-report`: where browsers report what the console's Content-Security-Policy
//! blocked (a script, style, image or request from another origin; a framing by an origin the
//! operator did not list). Each report becomes one warning in the log, so an operator embedding
//! the console sees a misconfiguration, and tests prove a journey requested nothing foreign.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Deserialize;

/// The path the policy's `report-uri` names.
pub const PATH: &str = "/console/csp-report";

/// Reports are small; anything larger is not a browser's report.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;

/// Longest value logged from a report (browsers put whole URLs in them).
const MAX_FIELD_CHARS: usize = 300;

/// The `application/csp-report` body: `{"csp-report": {...}}`.
#[derive(Debug, Deserialize)]
struct ReportBody {
    #[serde(rename = "csp-report")]
    report: Report,
}

/// The fields worth logging; browsers send more, which is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct Report {
    document_uri: String,
    effective_directive: String,
    violated_directive: String,
    blocked_uri: String,
    source_file: String,
    line_number: Option<u64>,
}

/// Logs the report (truncated: anyone can post here) and answers 204; a body that is not a
/// report gets a 400 and is not logged.
pub async fn receive(body: Bytes) -> StatusCode {
    if body.len() > MAX_REPORT_BYTES {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let Ok(ReportBody { report }) = serde_json::from_slice::<ReportBody>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let directive =
        if report.effective_directive.is_empty() { &report.violated_directive } else { &report.effective_directive };
    tracing::warn!(
        document = %clip(&report.document_uri),
        directive = %clip(directive),
        blocked = %clip(&report.blocked_uri),
        source = %clip(&report.source_file),
        line = report.line_number.unwrap_or(0),
        "a browser blocked something on a console page (Content-Security-Policy)"
    );
    StatusCode::NO_CONTENT
}

/// A value cut to a loggable length, without its query (which can carry anything, tokens too).
fn clip(value: &str) -> String {
    let without_query = value.split(['?', '#']).next().unwrap_or_default();
    without_query.chars().take(MAX_FIELD_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_report_is_accepted_and_anything_else_refused() {
        let report = br#"{"csp-report": {"document-uri": "http://h/console/", "effective-directive": "connect-src",
            "blocked-uri": "https://elsewhere.example/x?token=secret"}}"#;
        assert_eq!(receive(Bytes::from_static(report)).await, StatusCode::NO_CONTENT);
        assert_eq!(receive(Bytes::from_static(b"not json")).await, StatusCode::BAD_REQUEST);
        assert_eq!(receive(Bytes::from_static(b"{}")).await, StatusCode::BAD_REQUEST);
        let huge = vec![b' '; MAX_REPORT_BYTES + 1];
        assert_eq!(receive(Bytes::from(huge)).await, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn logged_values_lose_their_query_and_are_bounded() {
        assert_eq!(clip("https://elsewhere.example/x?token=secret"), "https://elsewhere.example/x");
        assert_eq!(clip(&"a".repeat(1000)).len(), MAX_FIELD_CHARS);
    }
}
