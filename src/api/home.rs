//! `GET /`: a short page for whoever opens the server in a browser, pointing at
//! what there is to see (instead of an empty 404).

use axum::response::Html;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>gewe-server</title></head>
<body>
<h1>gewe-server</h1>
<p>A self-hosted server that speaks the GeWe WeChat-bot HTTP API. Bots call
<code>POST /gewe/v2/api/{module}/{action}</code> (or <code>/v2/api/…</code>) with an
<code>X-GEWE-TOKEN</code> header.</p>
<ul>
<li><a href="/docs">/docs</a>: the API, every route, tried from the browser</li>
<li><a href="/console">/console</a>: the operator console</li>
<li><a href="/openapi.json">/openapi.json</a>: the OpenAPI document</li>
<li><a href="/readyz">/readyz</a>: whether the database and the blob store answer</li>
</ul>
</body>
</html>
"#;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}
