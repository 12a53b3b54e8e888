//! The dashboard: five static files (the page, its style, three ES modules) compiled into the binary, served at `/ui`. The page
//! calls the JSON API with the token the operator types in; nothing is fetched from
//! elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const LIB_JS: &str = include_str!("../ui/lib.js");
const VIEWS_JS: &str = include_str!("../ui/views.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// Strict: the page runs only its own script and talks only to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(
    content_type: &'static str,
    body: &'static str,
) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone {
    move || {
        std::future::ready(
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_SECURITY_POLICY, CSP),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::REFERRER_POLICY, "no-referrer"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response(),
        )
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(page("text/html; charset=utf-8", INDEX)))
        .route("/ui/", get(page("text/html; charset=utf-8", INDEX)))
        .route(
            "/ui/app.js",
            get(page("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/ui/lib.js",
            get(page("text/javascript; charset=utf-8", LIB_JS)),
        )
        .route(
            "/ui/views.js",
            get(page("text/javascript; charset=utf-8", VIEWS_JS)),
        )
        .route("/ui/app.css", get(page("text/css; charset=utf-8", APP_CSS)))
}
