//! `/manage/{token}`: a subscriber's own page, reached from the link in every message (the same
//! secret as the one-click unsubscribe link): change the components and the language, or
//! unsubscribe. No login and no cookie: the token is the credential, so the page is sent with
//! `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, and a cross-site POST is refused
//! (see [`super::subscribe::same_origin`]).

use super::page::{render, PageLang};
use super::subscribe::{
    choices, chosen_language, field, form, message_page, picked, private, same_origin,
};
use crate::api::AppState;
use crate::domain::Subscriber;
use crate::store::port::Subscribers;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;

async fn page(state: &AppState, lang: PageLang, s: &Subscriber, saved: bool) -> Response {
    let chosen: Vec<String> = s.components.iter().map(|c| c.to_string()).collect();
    private(render(
        state,
        lang,
        "subscribe_manage.html",
        context! {
            token => s.unsubscribe_token.clone(),
            address => s.contact.to_string(),
            language => s.locale.as_str().split('-').next().unwrap_or("en").to_owned(),
            components => choices(state, &chosen).await,
            saved => saved,
            confirmed => s.confirmed,
        },
    ))
}

fn dead(state: &AppState, lang: PageLang) -> Response {
    message_page(
        state,
        lang,
        StatusCode::NOT_FOUND,
        "link_dead_h",
        "manage_dead",
        None,
    )
}

/// `GET /manage/{token}`.
pub async fn show(
    State(state): State<AppState>,
    lang: PageLang,
    Path(token): Path<String>,
) -> Response {
    match state.store.subscriber_by_token(&token).await {
        Ok(Some(s)) => page(&state, lang, &s, false).await,
        _ => dead(&state, lang),
    }
}

/// `POST /manage/{token}`: `action=save` (components, language) or `action=unsubscribe`.
pub async fn change(
    State(state): State<AppState>,
    lang: PageLang,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers, &state.subscriptions.base_url) {
        return message_page(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            "refused_h",
            "cross_site",
            None,
        );
    }
    let Ok(Some(s)) = state.store.subscriber_by_token(&token).await else {
        return dead(&state, lang);
    };
    let f = form(&body);
    if field(&f, "action") == "unsubscribe" {
        return match state.store.unsubscribe(&token).await {
            Ok(_) => message_page(
                &state,
                lang,
                StatusCode::OK,
                "unsubscribed_h",
                "unsubscribed",
                None,
            ),
            Err(_) => dead(&state, lang),
        };
    }
    let language = chosen_language(&f, lang);
    let components = picked(&state, &f).await;
    match state
        .store
        .change_subscriber(
            &s.id.to_string(),
            Some(super::lang::locale(language)),
            Some(components),
        )
        .await
    {
        // The page answers in the language just chosen.
        Ok((_, changed)) => page(&state, PageLang(language), &changed, true).await,
        Err(e) => {
            tracing::error!(error = %e, "a subscriber's change could not be stored");
            message_page(
                &state,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "refused_h",
                "try_later",
                None,
            )
        }
    }
}
