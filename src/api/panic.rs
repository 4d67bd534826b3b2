//! The last line of defence: a handler that panics (a bug, never an expected path) answers
//! `500 application/problem+json` and is logged, instead of hyper dropping the connection with
//! no answer at all. The panic unwinds out of that request only; the server, its other
//! connections and the store carry on.

use super::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

/// Middleware (`axum::middleware::from_fn`) that turns a panic in the rest of the stack into a
/// 500 problem.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            tracing::error!(%method, %path, panic = %message, "a request handler panicked; answered 500");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "crier failed while handling this request (a bug, logged on the server); check whether the change took effect before retrying, and please report it",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn boom() -> &'static str {
        panic!("deliberate test panic")
    }

    /// The layer around a service that panics: the client gets a 500 problem on a connection
    /// that stays usable, and the next request is served.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_json() {
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panic));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let r = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(r.status(), 500);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("logged on the server"), "{detail}");
        assert!(
            !detail.contains("deliberate"),
            "the panic's message stays in the log: {detail}"
        );
        let r = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "fine");
    }
}
