//! The operator's branding of the console (`[console]` in the configuration file): product name,
//! logo, brand colour, light or dark, and who may frame it. The colour becomes CSS custom
//! properties with a text colour chosen for contrast, so any brand colour stays readable.

use std::path::PathBuf;

use serde::Deserialize;

use crate::plugins::branding::check_svg;

/// `[console]` as written in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFileSettings {
    /// The name in the header and the page title (default "crmhost").
    pub product_name: Option<String>,
    /// An SVG logo for the header.
    pub logo: Option<PathBuf>,
    /// The brand colour, `#rrggbb`.
    pub brand_color: Option<String>,
    /// `light`, `dark` or `auto` (the visitor's system setting).
    pub theme: Option<Theme>,
    /// Origins allowed to embed the console in a frame (CSP `frame-ancestors`); none by default.
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
}

/// Light or dark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Light.
    #[default]
    Light,
    /// Dark.
    Dark,
    /// Follows the visitor's system.
    Auto,
}

/// The console's validated branding.
#[derive(Debug, Clone)]
pub struct ConsoleBranding {
    /// The product name.
    pub product_name: String,
    /// The logo's SVG text, checked.
    pub logo_svg: Option<String>,
    /// The brand colour as `(r, g, b)`.
    pub brand_rgb: (u8, u8, u8),
    /// The theme.
    pub theme: Theme,
    /// The CSP `frame-ancestors` sources (`'none'` when empty).
    pub frame_ancestors: Vec<String>,
}

impl Default for ConsoleBranding {
    fn default() -> Self {
        Self {
            product_name: "crmhost".to_owned(),
            logo_svg: None,
            brand_rgb: (0x25, 0x63, 0xeb),
            theme: Theme::Light,
            frame_ancestors: Vec::new(),
        }
    }
}

impl ConsoleBranding {
    /// Validates the file's settings (reading the logo); the message names the key.
    pub fn from_file(settings: ConsoleFileSettings) -> Result<Self, String> {
        let defaults = Self::default();
        let product_name = match settings.product_name {
            Some(name) if name.trim().is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) => {
                return Err("[console] product_name: use 1 to 60 printable characters".to_owned());
            }
            Some(name) => name.trim().to_owned(),
            None => defaults.product_name,
        };
        let brand_rgb = match settings.brand_color {
            Some(hex) => parse_hex(&hex).ok_or_else(|| format!("[console] brand_color: `{hex}` is not #rrggbb"))?,
            None => defaults.brand_rgb,
        };
        let logo_svg = match settings.logo {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("[console] logo: cannot read {}: {e}", path.display()))?;
                check_svg(&text).map_err(|e| format!("[console] logo {}: {e}", path.display()))?;
                Some(text)
            }
            None => None,
        };
        for origin in &settings.frame_ancestors {
            let parsed = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "https" | "http") && u.path() == "/" && u.query().is_none() && u.host().is_some()
            });
            if parsed.is_none() {
                return Err(format!(
                    "[console] frame_ancestors: `{origin}` is not an origin like https://app.example.com"
                ));
            }
        }
        let frame_ancestors = settings.frame_ancestors.iter().map(|o| o.trim_end_matches('/').to_owned()).collect();
        Ok(Self { product_name, logo_svg, brand_rgb, theme: settings.theme.unwrap_or_default(), frame_ancestors })
    }

    /// `brand.css`: the brand colour and a text colour readable on it (the theme's palette lives
    /// in `app.css`, chosen by the page from `config.json`).
    pub fn css(&self) -> String {
        let (r, g, b) = self.brand_rgb;
        let on_brand = if contrast_with_white(self.brand_rgb) >= 4.5 { "#ffffff" } else { "#0f172a" };
        format!(":root {{ --brand: #{r:02x}{g:02x}{b:02x}; --on-brand: {on_brand}; }}\n")
    }

    /// The CSP `frame-ancestors` value.
    pub fn frame_ancestors_source(&self) -> String {
        if self.frame_ancestors.is_empty() { "'none'".to_owned() } else { self.frame_ancestors.join(" ") }
    }
}

fn parse_hex(text: &str) -> Option<(u8, u8, u8)> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// WCAG contrast ratio of white text on the colour.
fn contrast_with_white((r, g, b): (u8, u8, u8)) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    let luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> ConsoleFileSettings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn text_on_the_brand_colour_stays_readable() {
        let dark_blue = ConsoleBranding::from_file(settings("brand_color = \"#1e3a8a\"")).unwrap();
        assert_eq!(dark_blue.css(), ":root { --brand: #1e3a8a; --on-brand: #ffffff; }\n");
        let yellow = ConsoleBranding::from_file(settings("brand_color = \"#facc15\"\ntheme = \"dark\"")).unwrap();
        assert!(yellow.css().contains("--on-brand: #0f172a"), "{}", yellow.css());
        assert_eq!(yellow.theme, Theme::Dark);
    }

    #[test]
    fn bad_settings_name_the_key() {
        for (text, key) in [
            ("brand_color = \"blue\"", "brand_color"),
            ("product_name = \"\"", "product_name"),
            ("frame_ancestors = [\"https://app.example.com/path\"]", "frame_ancestors"),
            ("logo = \"/no/such/logo.svg\"", "logo"),
        ] {
            let err = ConsoleBranding::from_file(settings(text)).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(toml::from_str::<ConsoleFileSettings>("colour = \"#fff\"").is_err());
        let framed = ConsoleBranding::from_file(settings("frame_ancestors = [\"https://app.example.com\"]")).unwrap();
        assert_eq!(framed.frame_ancestors_source(), "https://app.example.com");
        assert_eq!(ConsoleBranding::default().frame_ancestors_source(), "'none'");
    }
}
