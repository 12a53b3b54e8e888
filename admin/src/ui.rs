//! The dashboard: static files (the page, its style, its ES modules) compiled into the binary,
//! served at `/ui`. The page
//! calls the JSON API with the token the operator types in; nothing is fetched from
//! elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const APP_CSS: &str = include_str!("../ui/app.css");
/// The ES modules, by file name.
const MODULES: [(&str, &str); 7] = [
    ("app.js", include_str!("../ui/app.js")),
    ("lib.js", include_str!("../ui/lib.js")),
    ("views.js", include_str!("../ui/views.js")),
    ("timeline.js", include_str!("../ui/timeline.js")),
    ("config.js", include_str!("../ui/config.js")),
    ("routes.js", include_str!("../ui/routes.js")),
    ("forms.js", include_str!("../ui/forms.js")),
];

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
    let mut r = Router::new()
        .route("/ui", get(page("text/html; charset=utf-8", INDEX)))
        .route("/ui/", get(page("text/html; charset=utf-8", INDEX)))
        .route("/ui/app.css", get(page("text/css; charset=utf-8", APP_CSS)));
    for (name, body) in MODULES {
        r = r.route(
            &format!("/ui/{name}"),
            get(page("text/javascript; charset=utf-8", body)),
        );
    }
    r
}
