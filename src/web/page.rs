//! Rendering a page: the templates under `web/templates/` compiled into the binary, the
//! context every page shares (language, its words, the organisation, the time zone), and the
//! [`PageLang`] extractor that chooses the language.

use super::lang;
use crate::api::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment, Value};
use std::convert::Infallible;
use std::sync::LazyLock;

/// The page templates. Listed here so that a template missing from the tree fails the build.
const TEMPLATES: [(&str, &str); 30] = [
    (
        "timeline.html",
        include_str!("../../web/templates/timeline.html"),
    ),
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "status.html",
        include_str!("../../web/templates/status.html"),
    ),
    (
        "history.html",
        include_str!("../../web/templates/history.html"),
    ),
    (
        "incident.html",
        include_str!("../../web/templates/incident.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    (
        "subscribe.html",
        include_str!("../../web/templates/subscribe.html"),
    ),
    (
        "subscribe_code.html",
        include_str!("../../web/templates/subscribe_code.html"),
    ),
    (
        "subscribe_confirm.html",
        include_str!("../../web/templates/subscribe_confirm.html"),
    ),
    (
        "subscribe_message.html",
        include_str!("../../web/templates/subscribe_message.html"),
    ),
    (
        "subscribe_manage.html",
        include_str!("../../web/templates/subscribe_manage.html"),
    ),
    (
        "console/base.html",
        include_str!("../../web/templates/console/base.html"),
    ),
    (
        "console/error.html",
        include_str!("../../web/templates/console/error.html"),
    ),
    (
        "console/login.html",
        include_str!("../../web/templates/console/login.html"),
    ),
    (
        "console/dashboard.html",
        include_str!("../../web/templates/console/dashboard.html"),
    ),
    (
        "console/live.html",
        include_str!("../../web/templates/console/live.html"),
    ),
    (
        "console/compose.html",
        include_str!("../../web/templates/console/compose.html"),
    ),
    (
        "console/previews.html",
        include_str!("../../web/templates/console/previews.html"),
    ),
    (
        "console/confirm.html",
        include_str!("../../web/templates/console/confirm.html"),
    ),
    (
        "console/incident.html",
        include_str!("../../web/templates/console/incident.html"),
    ),
    (
        "console/audit.html",
        include_str!("../../web/templates/console/audit.html"),
    ),
    (
        "console/components.html",
        include_str!("../../web/templates/console/components.html"),
    ),
    (
        "console/channels.html",
        include_str!("../../web/templates/console/channels.html"),
    ),
    (
        "console/notice_times.html",
        include_str!("../../web/templates/console/notice_times.html"),
    ),
    (
        "console/notices.html",
        include_str!("../../web/templates/console/notices.html"),
    ),
    (
        "console/progress.html",
        include_str!("../../web/templates/console/progress.html"),
    ),
    (
        "console/subscribers.html",
        include_str!("../../web/templates/console/subscribers.html"),
    ),
    (
        "console/users.html",
        include_str!("../../web/templates/console/users.html"),
    ),
    (
        "console/account.html",
        include_str!("../../web/templates/console/account.html"),
    ),
    (
        "console/templates.html",
        include_str!("../../web/templates/console/templates.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        // A syntax error here is caught by `every_template_compiles` before it can ship; the
        // page would answer 500 naming the template rather than the process failing.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a page template does not compile");
        }
    }
    env
});

/// The language of the page being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLang(pub &'static str);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .map(|(_, v)| v)
        });
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(PageLang(lang::negotiate(query, accept)))
    }
}

/// Renders `template` with the shared context plus `page` to HTML (the server's answer and
/// the static copy use this same function, so they are byte for byte the same).
pub fn render_html(
    settings: &crate::render::Settings,
    lang: PageLang,
    template: &str,
    page: Value,
) -> Result<String, minijinja::Error> {
    let languages: Vec<Value> = lang::LANGUAGES
        .iter()
        .map(|(code, name)| context! { code => code, name => name })
        .collect();
    let logo = settings
        .page
        .logo
        .as_ref()
        .map(|l| format!("/assets/{}", l.file));
    let ctx = context! {
        lang => lang.0,
        t => lang::words(lang.0),
        languages => languages,
        org => settings.org_name,
        zone => settings.timezone.name(),
        logo => logo,
        home => settings.page.path,
        ..page
    };
    ENV.get_template(template).and_then(|t| t.render(ctx))
}

/// Renders `template` with the shared context plus `page`.
pub fn render(state: &AppState, lang: PageLang, template: &str, page: Value) -> Response {
    render_status(state, lang, template, page, StatusCode::OK)
}

/// As [`render`], answering with `status` (404 and 400 pages).
pub fn render_status(
    state: &AppState,
    lang: PageLang,
    template: &str,
    page: Value,
    status: StatusCode,
) -> Response {
    match render_html(&state.render, lang, template, page) {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            // The same URL answers in the reader's language.
            res.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            res
        }
        Err(e) => {
            tracing::error!(template, error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown; the server log says why.",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name} missing");
        }
    }
}
