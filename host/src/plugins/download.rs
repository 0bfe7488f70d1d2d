//! Host-side file downloads for plugins exporting `files`: the plugin says which `GET` fetches a
//! file; the host sends it under the same rules as the plugin's own `http.send` (the egress policy
//! checked before sending and again after DNS, no redirects followed, no credential headers from
//! the plugin, the account's pacer), attaches the connection's token unless the plugin says the URL
//! is pre-signed (one refresh after a 401),
//! and hands back the response to stream, so the bytes never enter the sandbox.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use url::Url;

use super::CallContext;
use super::bindings::files::DownloadRequest;
use super::capability::http::header_forbidden;
use super::loaded::LoadedPlugin;

/// Why a file could not be fetched. Messages are safe to show (no URL query, no token).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The plugin's request breaks the egress rules.
    #[error("the plugin's download request was refused: {0}")]
    Refused(String),
    /// The connection has no usable credentials.
    #[error("no usable credentials: {0}")]
    Credentials(String),
    /// The CRM answered something other than 200.
    #[error("the CRM answered {status} for the file")]
    Crm {
        /// The CRM's status.
        status: u16,
    },
    /// The request failed (connect, timeout).
    #[error("the file could not be fetched: {0}")]
    Failed(String),
}

impl LoadedPlugin {
    /// Sends a plugin's download request for the connection in `context`; the response (status
    /// 200) to stream. `timeout` bounds the wait for the answer's headers, not the transfer.
    #[tracing::instrument(name = "plugin.download", skip_all, fields(plugin = %self.slug, connection = %context.connection_label))]
    pub async fn fetch_file(
        &self,
        context: &CallContext,
        request: &DownloadRequest,
        timeout: Duration,
    ) -> Result<reqwest::Response, DownloadError> {
        let url = Url::parse(&request.url).map_err(|e| DownloadError::Refused(format!("invalid URL: {e}")))?;
        self.policy.check_url(&url).map_err(DownloadError::Refused)?;
        if let Some((name, _)) = request.headers.iter().find(|(n, _)| header_forbidden(n)) {
            return Err(DownloadError::Refused(format!("header `{name}` may not be set by a plugin")));
        }
        let credentials = if request.with_credentials { context.credentials.as_ref() } else { None };
        let mut response = self.send_download(context, credentials, &url, &request.headers, false, timeout).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED && credentials.is_some() {
            response = self.send_download(context, credentials, &url, &request.headers, true, timeout).await?;
        }
        match response.status().as_u16() {
            200 => Ok(response),
            status => Err(DownloadError::Crm { status }),
        }
    }

    async fn send_download(
        &self,
        context: &CallContext,
        credentials: Option<&std::sync::Arc<dyn super::CredentialSource>>,
        url: &Url,
        headers: &[(String, String)],
        refresh: bool,
        timeout: Duration,
    ) -> Result<reqwest::Response, DownloadError> {
        if let Some(pacer) = &context.pacer {
            pacer.acquire(url.path()).await;
        }
        let mut builder = self.client.get(url.clone());
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(source) = credentials {
            let token = if refresh { source.refresh_after_unauthorized().await } else { source.access_token().await };
            if let Some(token) = token.map_err(|e| DownloadError::Credentials(e.to_string()))? {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| {
                        DownloadError::Credentials("the stored token is not a valid header value".to_owned())
                    })?;
                value.set_sensitive(true);
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        let sent = tokio::time::timeout(timeout, builder.send()).await;
        match sent {
            Err(_) => Err(DownloadError::Failed(format!("no answer within {} s", timeout.as_secs()))),
            Ok(Err(err)) if err.is_connect() => Err(DownloadError::Failed("could not connect to the CRM".to_owned())),
            Ok(Err(err)) => Err(DownloadError::Failed(err.without_url().to_string())),
            Ok(Ok(response)) => Ok(response),
        }
    }
}
