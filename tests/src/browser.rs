//! A real Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the
//! console's tests: a chromedriver per test on a free port, a headless session, helpers that
//! find controls the way a person does (by their visible label) and screenshots under
//! `target/console-screens/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// How long a page gets to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

/// A browser session and the chromedriver behind it (killed on drop).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether this run must have a browser: CI (`CI=true`) or `CRMHOST_REQUIRE_BROWSER=1`.
fn browser_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("CRMHOST_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| PathBuf::from(dir).join(name)).find(|p| p.is_file())
}

impl Browser {
    /// A headless Chromium at `width`×`height`; `None` (with a note) when chromium or
    /// chromedriver is missing, unless this run requires them.
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        Self::launch(width, height, None).await
    }

    /// A headless Chromium emulating a phone's viewport of `width`×`height` CSS pixels (a desktop
    /// window cannot be made narrower than about 500 px).
    pub async fn start_phone(width: u32, height: u32) -> Option<Self> {
        let metrics = serde_json::json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0}});
        Self::launch(width.max(500), height, Some(metrics)).await
    }

    async fn launch(width: u32, height: u32, mobile_emulation: Option<serde_json::Value>) -> Option<Self> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver")) else {
            assert!(!browser_required(), "CRMHOST_REQUIRE_BROWSER=1 but chromium or chromedriver is not on PATH");
            eprintln!("skipped: install chromium and chromium-driver to run the console's browser tests");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        let mut options = serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--lang=en-US"],
        });
        if let Some(emulation) = mobile_emulation {
            options["mobileEmulation"] = emulation;
        }
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("no WebDriver session: {err}"),
            }
        };
        Some(Self { client, driver })
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Waits until the page's text contains `text`; panics with the page's text otherwise.
    pub async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let body = self.page_text().await;
            if body.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "the page never showed {text:?}; it shows:\n{body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text no longer contains `text`.
    pub async fn wait_for_no_text(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let body = self.page_text().await;
            if !body.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "the page still shows {text:?}:\n{body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the element `css` selects (waiting for it to appear).
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                return found.text().await.unwrap_or_default();
            }
            assert!(Instant::now() < deadline, "nothing matches {css}:\n{}", self.page_text().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the page.
    pub async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The button or link whose visible text is `label` (waiting for it to appear).
    pub async fn control(&self, label: &str) -> fantoccini::elements::Element {
        let xpath = format!("//*[self::button or self::a][normalize-space()={}]", xpath_literal(label));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(found) = self.client.find(Locator::XPath(&xpath)).await {
                return found;
            }
            assert!(Instant::now() < deadline, "no button or link labelled {label:?}:\n{}", self.page_text().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the button or link labelled `label`.
    pub async fn click(&self, label: &str) {
        let xpath = format!("//*[self::button or self::a][normalize-space()={}]", xpath_literal(label));
        self.click_found(Locator::XPath(&xpath), label).await;
    }

    /// Clicks the element `css` selects (for controls without a unique label: a dialog's button,
    /// a checkbox, a row's link).
    pub async fn click_css(&self, css: &str) {
        self.click_found(Locator::Css(css), css).await;
    }

    /// Finds and clicks, again while the page is still redrawing (a screen replaced by the next
    /// one leaves a found element stale), until [`PATIENCE`] runs out.
    async fn click_found(&self, locator: Locator<'_>, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let outcome = match self.client.find(locator).await {
                Ok(found) => found.click().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("clicking {what}: {e}\n{}", self.page_text().await),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Presses and releases a key as a keyboard would (`fantoccini::key::Key::Tab`, `Enter`, …),
    /// on whatever has the focus.
    pub async fn press(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let value: char = key.into();
        let keys = KeyActions::new("keyboard".to_owned()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
        self.client.perform_actions(keys).await.expect("key press");
    }

    /// Runs a script and returns its JSON value.
    pub async fn script(&self, source: &str) -> serde_json::Value {
        self.client.execute(source, vec![]).await.expect("script runs")
    }

    /// Saves a PNG of the window as `target/console-screens/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screens_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// `target/console-screens` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn screens_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screens")
}

/// `text` as an XPath string literal (XPath has no escapes: quotes are concatenated).
fn xpath_literal(text: &str) -> String {
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('"').map(|p| format!("\"{p}\"")).collect();
    format!("concat({})", parts.join(", '\"', "))
}
