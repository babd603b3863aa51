//! `http_get(url)`: what the procedure does with `curl -s URL`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rhai::{Engine, EvalAltResult};

use super::Primitive;
use crate::error::{Error, Result};
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    name: "http_get",
    signatures: &["http_get(url) -> string"],
    doc: r#"
Fetches an `http://` URL and returns the body, like `curl -s URL` in the verification steps. A
connection failure or a status other than 2xx is an error of kind `remote` (within 10 seconds).

```rhai
let reply = http_get(`http://${gateway_url}/hello`);
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn("http_get", move |url: &str| -> std::result::Result<String, Box<EvalAltResult>> {
        let (url, s2) = (url.to_string(), s.clone());
        s.bridge.run(async move {
            let started = Instant::now();
            let body = get(&url).await?;
            s2.step("-", "http_get", &url, "ok", started, None);
            Ok(body)
        })
    });
}

async fn get(url: &str) -> Result<String> {
    let remote = |message: String| Error::Remote {
        what: format!("GET {url}"),
        message,
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| Error::usage(format!("http_get: \"{url}\" is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::usage(format!("http_get: only http:// URLs are supported, got \"{url}\"")));
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(Duration::from_secs(10), client.get(uri))
        .await
        .map_err(|_| remote("no answer within 10s".into()))?
        .map_err(|e| remote(e.to_string()))?;
    let status = res.status();
    let bytes = res.into_body().collect().await.map_err(|e| remote(e.to_string()))?.to_bytes();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(remote(format!("HTTP {status}: {}", body.chars().take(200).collect::<String>())));
    }
    Ok(body)
}
