//! HTTP(S) URLs: one type, one rule, instead of `starts_with("http")` checks in every caller. An
//! [`HttpUrl`] parses as a URL (WHATWG, the `url` crate through reqwest), its scheme is `http`
//! or `https` (in any case, as RFC 3986 allows), it names a host, and it holds no whitespace or
//! control character (the URL parser would silently drop a tab or a line break; crier refuses
//! them so that what is configured is what is used). The text is kept as written, trimmed.

use std::fmt;

/// Why a text is not an [`HttpUrl`]. Callers turn it into a message naming their own key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` at all (`127.0.0.1:8080`).
    #[error("has no http:// or https:// scheme")]
    NoScheme,
    /// A scheme other than http(s), or a `host:port` read as a scheme (`localhost:8080`).
    #[error("has no http:// or https:// scheme (\"{0}:\" was read as one)")]
    OtherScheme(String),
    /// `http://` or `http:///path`.
    #[error("names no host")]
    NoHost,
    /// A space, tab, line break or other control character.
    #[error("contains whitespace or a control character")]
    Whitespace,
    /// Not a URL at all; the parser's reason.
    #[error("is not a URL ({0})")]
    Invalid(String),
}

/// An absolute `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    url: reqwest::Url,
}

impl HttpUrl {
    /// Parses a trimmed text; see the module header for the rule.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let text = s.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Whitespace);
        }
        let url = match reqwest::Url::parse(text) {
            Ok(u) => u,
            Err(_) if !text.contains("://") => return Err(UrlError::NoScheme),
            Err(e) => return Err(UrlError::Invalid(e.to_string())),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::OtherScheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        Ok(HttpUrl {
            text: text.to_owned(),
            url,
        })
    }

    /// The URL as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// `scheme://host[:port]`, lower-cased, the default port left out: what a browser sends
    /// in `Origin`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted_as_written() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://status.example.com/",
            "HTTPS://Status.Example.com/x",
            "  https://hooks.example.com/crier?x=1 ",
        ] {
            let u = HttpUrl::parse(ok).unwrap();
            assert_eq!(u.as_str(), ok.trim());
        }
        let u = HttpUrl::parse("HTTPS://Status.Example.com:443/x").unwrap();
        assert!(u.is_https());
        assert_eq!(u.origin(), "https://status.example.com");
        let u = HttpUrl::parse("http://localhost:8080/").unwrap();
        assert!(!u.is_https());
        assert_eq!(u.origin(), "http://localhost:8080");
    }

    #[test]
    fn everything_else_is_refused_with_the_reason() {
        for (bad, why) in [
            ("127.0.0.1:8080", UrlError::NoScheme),
            ("localhost:8080", UrlError::OtherScheme("localhost".into())),
            ("ftp://example.com", UrlError::OtherScheme("ftp".into())),
            ("httpx://example.com", UrlError::OtherScheme("httpx".into())),
            ("https://exa mple.com", UrlError::Whitespace),
            ("https://example.com/\tx", UrlError::Whitespace),
            ("", UrlError::NoScheme),
        ] {
            assert_eq!(HttpUrl::parse(bad).unwrap_err(), why, "{bad}");
        }
        assert!(matches!(
            HttpUrl::parse("http://"),
            Err(UrlError::Invalid(_))
        ));
    }
}
