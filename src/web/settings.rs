//! `[status_page]` in crier.toml: whether the public pages are served, at which path the
//! status page answers, the organisation's logo, and the directory of the static copy.

use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The section as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageFile {
    /// Serve the public pages (default true).
    pub enabled: Option<bool>,
    /// Where the status page answers (default "/").
    pub path: Option<String>,
    /// An image file shown as the organisation's logo (SVG, PNG, JPEG, WebP or GIF, ≤ 512 KiB).
    pub logo: Option<PathBuf>,
    /// Where crier keeps a static copy of the public pages, rewritten on every public change.
    pub static_export_dir: Option<PathBuf>,
}

/// The logo, read once at start-up.
#[derive(Debug, Clone)]
pub struct Logo {
    pub content_type: &'static str,
    pub bytes: Arc<[u8]>,
    /// The file name it is served (and exported) as, e.g. `logo.svg`.
    pub file: &'static str,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct PageSettings {
    pub enabled: bool,
    pub path: String,
    pub logo: Option<Logo>,
    pub static_export_dir: Option<PathBuf>,
    /// The status page's render cache (one per server; not configuration).
    pub cache: super::cache::PageCache,
}

impl Default for PageSettings {
    fn default() -> Self {
        PageSettings {
            enabled: true,
            path: "/".into(),
            logo: None,
            static_export_dir: None,
            cache: Default::default(),
        }
    }
}

/// The largest logo accepted.
const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// Paths the status page may not take: the other pages, the API, the probes.
const TAKEN: [&str; 11] = [
    "/api",
    "/assets",
    "/history",
    "/incidents",
    "/healthz",
    "/readyz",
    "/metrics",
    "/subscribe",
    "/cap",
    "/console",
    "/manage",
];

impl PageSettings {
    /// Validates the section; every error names the key and says what to write instead.
    pub fn from_file(f: Option<StatusPageFile>) -> Result<Self, String> {
        let f = f.unwrap_or_default();
        let mut s = PageSettings::default();
        if let Some(e) = f.enabled {
            s.enabled = e;
        }
        if let Some(p) = f.path {
            let ok_chars = p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
            let trimmed = if p == "/" {
                "/"
            } else {
                p.trim_end_matches('/')
            };
            let taken = TAKEN
                .iter()
                .any(|t| trimmed == *t || trimmed.starts_with(&format!("{t}/")));
            if !p.starts_with('/') || !ok_chars || p.contains("//") || p.contains("..") || taken {
                return Err(format!(
                    "status_page.path = \"{p}\" is not a free path; use \"/\" or a path such as \"/status\" (letters, digits, '-', '_', not one of {})",
                    TAKEN.join(", ")
                ));
            }
            s.path = trimmed.to_owned();
        }
        if let Some(file) = f.logo {
            s.logo = Some(read_logo(&file)?);
        }
        if let Some(dir) = f.static_export_dir {
            if dir.as_os_str().is_empty() {
                return Err(
                    "status_page.static_export_dir is empty; name a directory or leave the key out"
                        .into(),
                );
            }
            s.static_export_dir = Some(dir);
        }
        Ok(s)
    }
}

fn read_logo(file: &std::path::Path) -> Result<Logo, String> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (content_type, name) = match ext.as_str() {
        "svg" => ("image/svg+xml", "logo.svg"),
        "png" => ("image/png", "logo.png"),
        "jpg" | "jpeg" => ("image/jpeg", "logo.jpg"),
        "webp" => ("image/webp", "logo.webp"),
        "gif" => ("image/gif", "logo.gif"),
        _ => {
            return Err(format!(
                "status_page.logo = \"{}\" is not an SVG, PNG, JPEG, WebP or GIF file (by its extension); convert it or name another file",
                file.display()
            ))
        }
    };
    let len = std::fs::metadata(file)
        .map_err(|e| {
            format!(
                "status_page.logo = \"{}\" cannot be read ({e}); check the path",
                file.display()
            )
        })?
        .len();
    if len > MAX_LOGO_BYTES || len == 0 {
        return Err(format!(
            "status_page.logo = \"{}\" is {len} bytes; use a non-empty image of at most {MAX_LOGO_BYTES} bytes (every reader downloads it)",
            file.display()
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| {
        format!(
            "status_page.logo = \"{}\" cannot be read ({e}); check the path",
            file.display()
        )
    })?;
    Ok(Logo {
        content_type,
        bytes: bytes.into(),
        file: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_logos_are_checked() {
        let ok = |p: &str| {
            PageSettings::from_file(Some(StatusPageFile {
                path: Some(p.into()),
                ..Default::default()
            }))
        };
        assert_eq!(ok("/").unwrap().path, "/");
        assert_eq!(ok("/status/").unwrap().path, "/status");
        for bad in [
            "status",
            "/api/v1/x",
            "/history",
            "/assets/x",
            "/a b",
            "/../x",
            "//x",
        ] {
            let e = ok(bad).unwrap_err();
            assert!(e.contains("status_page.path"), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("l.svg");
        std::fs::write(&svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
        let s = PageSettings::from_file(Some(StatusPageFile {
            logo: Some(svg),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(s.logo.unwrap().content_type, "image/svg+xml");
        let txt = dir.path().join("l.txt");
        std::fs::write(&txt, "x").unwrap();
        for bad in [txt, dir.path().join("missing.png")] {
            let e = PageSettings::from_file(Some(StatusPageFile {
                logo: Some(bad),
                ..Default::default()
            }))
            .unwrap_err();
            assert!(e.contains("status_page.logo"), "{e}");
        }
    }
}
