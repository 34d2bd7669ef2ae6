//! The chat page at `/`: plain HTML, CSS and JavaScript compiled into the binary (no build
//! step), served with a strict Content-Security-Policy (no inline code, same-origin only).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/assets/chat.js", web::get().to(script))
        .route("/assets/chat.css", web::get().to(stylesheet));
}

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const CHAT_JS: &str = include_str!("../../assets/chat.js");
const CHAT_CSS: &str = include_str!("../../assets/chat.css");

/// Same-origin scripts, styles and connections only ('self' covers the page's own ws://).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn page_response(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

async fn index() -> HttpResponse {
    page_response("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> HttpResponse {
    page_response("text/javascript; charset=utf-8", CHAT_JS)
}

async fn stylesheet() -> HttpResponse {
    page_response("text/css; charset=utf-8", CHAT_CSS)
}
