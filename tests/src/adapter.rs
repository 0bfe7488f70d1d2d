//! A sandbox app connected to one CRM, for calling an adapter directly ([`ConnectedAdapter`]).

use std::sync::Arc;

use crmhost::plugins::bindings::adapter::{Page, PullRequest, PushOutcome, PushRecord};
use crmhost::plugins::bindings::{AdapterError, FieldValue, Value};

use crate::*;

/// A sandbox crmhost with workspace `w1` connected to one emulated CRM, and that connection's
/// plugin and call context (credentials that refresh themselves), for calling the adapter directly.
pub struct ConnectedAdapter {
    /// The app.
    pub app: TestApp,
    /// The adapter.
    pub plugin: Arc<crmhost::plugins::LoadedPlugin>,
    /// The connection's call context.
    pub context: crmhost::plugins::CallContext,
}

impl ConnectedAdapter {
    /// Starts a sandbox app and connects `w1` to `slug` through the OAuth flow.
    pub async fn connect(slug: &str) -> Self {
        let app = TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.expect("app");
        assert_eq!(app.connect("w1", slug).await.status(), reqwest::StatusCode::OK, "connect {slug}");
        let workspace = crmhost::domain::WorkspaceId::parse("w1").expect("workspace");
        let slug = crmhost::domain::PluginSlug::parse(slug).expect("slug");
        let (plugin, context) = app.state.connections.call_context(&workspace, &slug).await.expect("connected");
        Self { app, plugin, context }
    }

    /// `push`, expecting the call itself to succeed.
    pub async fn push(&self, entity: &str, key: &str, records: &[PushRecord]) -> Vec<PushOutcome> {
        self.plugin.push(self.context.clone(), entity, key, records).await.expect("call").expect("push")
    }

    /// `pull`, with the adapter's answer.
    pub async fn pull(&self, request: &PullRequest) -> Result<Page, AdapterError> {
        self.plugin.pull(self.context.clone(), request).await.expect("call")
    }

    /// Every page of a pull, following cursors.
    pub async fn pull_all(&self, mut request: PullRequest) -> Vec<Page> {
        let mut pages = Vec::new();
        loop {
            let page = self.pull(&request).await.expect("pull");
            let next = page.next_cursor.clone();
            pages.push(page);
            match next {
                Some(cursor) => request.cursor = Some(cursor),
                None => return pages,
            }
            assert!(pages.len() < 500, "paging does not end");
        }
    }
}

/// A text field.
pub fn text_field(name: &str, value: &str) -> FieldValue {
    FieldValue { name: name.to_owned(), value: Value::Text(value.to_owned()) }
}

/// The ids of successful push outcomes; panics on a failure.
pub fn written_ids(outcomes: &[PushOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            PushOutcome::Created(id) | PushOutcome::Updated(id) => id.clone(),
            PushOutcome::Failed(e) => panic!("push failed: {e:?}"),
        })
        .collect()
}

/// A pull of `entity` with no cursor, filter or field list.
pub fn pull_request(entity: &str, limit: u32) -> PullRequest {
    PullRequest { entity: entity.to_owned(), cursor: None, modified_since: None, ids: vec![], fields: vec![], limit }
}
