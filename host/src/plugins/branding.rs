//! What the catalogue draws for a plugin: its category (the operator's, else the plugin's
//! declared one) and its logo (an SVG), taken from the operator's configuration, else a
//! `<name>.svg` beside the plugin's `.wasm`, else the logo the plugin declares in `describe`, else a
//! generic icon with the plugin's initial. Logos are checked for active content before they are
//! served.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::description::PluginDescription;
use super::loaded::PluginSource;

/// The largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

/// What kind of system a plugin connects to (the console groups provider cards by it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A CRM (the contract's purpose, and the default).
    #[default]
    Crm,
    /// Marketing automation.
    Marketing,
    /// Customer support / help desk.
    Support,
    /// ERP or accounting.
    Erp,
    /// Anything else.
    Other,
}

/// Where a logo came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogoOrigin {
    /// The operator's configuration (`[plugins.<slug>] logo = "…"`).
    Operator,
    /// Shipped with the plugin (beside its `.wasm`, or bundled).
    Plugin,
    /// Drawn by crmhost: the plugin's initial.
    Generic,
}

/// A checked SVG logo.
#[derive(Debug, Clone)]
pub struct Logo {
    /// The SVG text.
    pub svg: Arc<str>,
    /// Where it came from.
    pub origin: LogoOrigin,
}

/// A plugin's category and logo.
#[derive(Debug, Clone)]
pub struct Branding {
    /// Its category.
    pub category: Category,
    /// Its logo.
    pub logo: Logo,
}

/// The operator's branding settings for one plugin.
#[derive(Debug, Clone, Default)]
pub struct BrandingOverrides<'a> {
    /// The category, when set.
    pub category: Option<Category>,
    /// An SVG file, when set.
    pub logo: Option<&'a Path>,
}

/// Resolves a plugin's branding. An operator logo that cannot be read or is unsafe is an error
/// (the operator asked for it); a plugin's own broken logo file is logged and passed over (a
/// declared logo was checked with the description).
pub async fn resolve(
    description: &PluginDescription,
    source: &PluginSource,
    overrides: BrandingOverrides<'_>,
) -> Result<Branding, String> {
    let category = overrides.category.unwrap_or(description.category);
    if let Some(path) = overrides.logo {
        let svg = read_logo(path).await.map_err(|e| format!("logo {}: {e}", path.display()))?;
        return Ok(Branding { category, logo: Logo { svg, origin: LogoOrigin::Operator } });
    }
    let beside = match source {
        PluginSource::File(wasm) => {
            let beside = wasm.with_extension("svg");
            match tokio::fs::try_exists(&beside).await {
                Ok(true) => read_logo(&beside)
                    .await
                    .inspect_err(|e| {
                        tracing::warn!(slug = %description.slug, file = %beside.display(), "plugin logo ignored: {e}")
                    })
                    .ok(),
                _ => None,
            }
        }
        PluginSource::Bundled => None,
    };
    let logo = match beside.or_else(|| description.logo_svg.clone()) {
        Some(svg) => Logo { svg, origin: LogoOrigin::Plugin },
        None => Logo { svg: Arc::from(generic_logo(&description.name)), origin: LogoOrigin::Generic },
    };
    Ok(Branding { category, logo })
}

async fn read_logo(path: &Path) -> Result<Arc<str>, String> {
    let bytes = tokio::fs::read(path).await.map_err(|e| format!("cannot read it ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    check_svg(&text)?;
    Ok(Arc::from(text))
}

/// Accepts a static SVG image: small, an `<svg>` root, and nothing that runs or loads from
/// elsewhere (scripts, event handlers, foreign objects, external references).
pub fn check_svg(text: &str) -> Result<(), String> {
    if text.len() > MAX_LOGO_BYTES {
        return Err(format!("it is {} bytes; a logo may have at most {MAX_LOGO_BYTES}", text.len()));
    }
    let lower = text.to_ascii_lowercase();
    if !lower.contains("<svg") {
        return Err("it is not an SVG image (no <svg> element)".to_owned());
    }
    const ACTIVE: &[&str] = &[
        "<script",
        "<foreignobject",
        "<iframe",
        "<embed",
        "<object",
        "javascript:",
        "<!entity",
        "@import",
        "href=\"http",
        "href='http",
        "href=\"//",
        "href='//",
        "url(http",
        "url(//",
        "url(\"http",
        "url('http",
    ];
    if let Some(found) = ACTIVE.iter().find(|needle| lower.contains(*needle)) {
        return Err(format!("it contains `{found}`: a logo must be a static image with no external references"));
    }
    if let Some(attribute) = event_handler(&lower) {
        return Err(format!("it has an event handler (`{attribute}`): a logo must be a static image"));
    }
    Ok(())
}

/// The first `on…=` attribute, if any.
fn event_handler(lower: &str) -> Option<String> {
    let bytes = lower.as_bytes();
    (1..bytes.len().saturating_sub(2)).find_map(|i| {
        let starts_attribute = bytes[i - 1].is_ascii_whitespace() || bytes[i - 1] == b'/';
        // Compared as bytes: `i` may sit inside a multi-byte character until `on` is found there.
        if !starts_attribute || !bytes[i..].starts_with(b"on") {
            return None;
        }
        let name_end = i + 2 + lower[i + 2..].bytes().take_while(u8::is_ascii_alphabetic).count();
        let after = lower[name_end..].trim_start();
        (name_end > i + 2 && after.starts_with('=')).then(|| lower[i..name_end].to_owned())
    })
}

/// A neutral rounded square with the plugin's initial.
fn generic_logo(name: &str) -> String {
    let initial = name.chars().find(|c| c.is_alphanumeric()).map_or('?', |c| c.to_ascii_uppercase());
    let label = crate::markup::escape(name);
    let initial = if initial.is_ascii_alphanumeric() { initial.to_string() } else { "?".to_owned() };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\" role=\"img\" aria-label=\"{label}\">\
         <rect width=\"64\" height=\"64\" rx=\"14\" fill=\"#475569\"/>\
         <text x=\"32\" y=\"42\" font-family=\"system-ui,sans-serif\" font-size=\"30\" font-weight=\"600\" \
         text-anchor=\"middle\" fill=\"#fff\">{initial}</text></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_images_pass_and_active_content_is_refused() {
        for good in [
            include_str!("../../../plugins/salesforce/assets/logo.svg"),
            include_str!("../../../plugins/hubspot/assets/logo.svg"),
            &generic_logo("Pipedrive & Co <x>"),
            "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><use href=\"#a\"/></svg>",
        ] {
            assert_eq!(check_svg(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("<svg><script>alert(1)</script></svg>", "<script"),
            ("<svg onload=\"alert(1)\"></svg>", "onload"),
            ("<svg><rect\nonclick = 'x'/></svg>", "onclick"),
            ("<svg><image href=\"https://evil.example/x.png\"/></svg>", "href=\"http"),
            ("<svg><a href=\"javascript:alert(1)\">x</a></svg>", "javascript:"),
            ("<svg><foreignObject></foreignObject></svg>", "<foreignobject"),
            ("<html><body>no</body></html>", "not an SVG"),
        ] {
            let err = check_svg(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
        }
        assert!(check_svg(&format!("<svg>{}</svg>", " ".repeat(MAX_LOGO_BYTES))).unwrap_err().contains("at most"));
        // Words that merely start with "on" are not handlers.
        assert_eq!(check_svg("<svg><text>only one é on</text><g fill=\"none\" opacity=\"1\"/></svg>"), Ok(()));
    }

    fn described(logo_svg: Option<&str>, category: Category) -> PluginDescription {
        PluginDescription {
            slug: crate::domain::PluginSlug::parse("acme").unwrap(),
            name: "Acme".to_owned(),
            version: "1.0.0".to_owned(),
            description: String::new(),
            auth: super::super::description::AuthSchemes::default(),
            allowed_hosts: vec![],
            rate_limits: vec![],
            entities: vec![],
            capabilities: super::super::description::CapabilitySet {
                push: false,
                pull: false,
                incremental: false,
                delete: false,
                webhooks: false,
            },
            settings: vec![],
            rate_limit_headers: vec![],
            category,
            logo_svg: logo_svg.map(Arc::from),
        }
    }

    #[tokio::test]
    async fn the_operator_logo_wins_then_the_file_beside_then_the_declared_one_then_a_generic_one() {
        let dir = std::env::temp_dir().join(format!("crmhost-branding-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, bad) = (dir.join("good.svg"), dir.join("bad.svg"));
        std::fs::write(&good, "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>").unwrap();
        std::fs::write(&bad, "<svg onload=\"alert(1)\"/>").unwrap();
        let operator = |logo| BrandingOverrides { category: Some(Category::Support), logo };
        let bundled = PluginSource::Bundled;
        let plain = described(None, Category::Marketing);

        let chosen = resolve(&plain, &bundled, operator(Some(&good))).await.unwrap();
        assert_eq!((chosen.category, chosen.logo.origin), (Category::Support, LogoOrigin::Operator));
        let refused = resolve(&plain, &bundled, operator(Some(&bad))).await.unwrap_err();
        assert!(refused.contains("bad.svg") && refused.contains("onload"), "{refused}");
        let missing = resolve(&plain, &bundled, operator(Some(&dir.join("none.svg")))).await.unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");

        // Beside the component: `good.wasm` has `good.svg`; `bad.wasm`'s is refused, `none.wasm` has none.
        let beside = |stem: &str| PluginSource::File(dir.join(format!("{stem}.wasm")));
        let declared = described(Some("<svg><rect width=\"1\" height=\"1\"/></svg>"), Category::Marketing);
        let own = resolve(&declared, &beside("good"), BrandingOverrides::default()).await.unwrap();
        assert_eq!((own.category, own.logo.origin), (Category::Marketing, LogoOrigin::Plugin));
        assert!(own.logo.svg.contains("circle"), "the file beside the component comes before the declared logo");
        for stem in ["bad", "none"] {
            let generic = resolve(&plain, &beside(stem), BrandingOverrides::default()).await.unwrap();
            assert_eq!(generic.logo.origin, LogoOrigin::Generic, "{stem}");
            assert!(generic.logo.svg.contains(">A</text>"));
            let shipped = resolve(&declared, &beside(stem), BrandingOverrides::default()).await.unwrap();
            assert!(shipped.logo.svg.contains("rect") && shipped.logo.origin == LogoOrigin::Plugin, "{stem}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_generic_logo_escapes_the_name_and_shows_its_initial() {
        let svg = generic_logo("\"acme\" <crm>");
        assert!(svg.contains("aria-label=\"&quot;acme&quot; &lt;crm&gt;\""), "{svg}");
        assert!(svg.contains(">A</text>"), "{svg}");
        assert!(generic_logo("—").contains(">?</text>"));
    }
}
