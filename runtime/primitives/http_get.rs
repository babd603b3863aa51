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
Messages and the step line never show the URL's user info or query values (`http://***@host/p?token=***`).

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
            s2.step("-", "http_get", &redacted(&url), "ok", started, None);
            Ok(body)
        })
    });
}

async fn get(url: &str) -> Result<String> {
    let shown = redacted(url);
    let secrets = secrets(url);
    let remote = |message: String| Error::Remote {
        what: format!("GET {shown}"),
        message: scrub(&message, &secrets),
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| Error::usage(format!("http_get: \"{shown}\" is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::usage(format!("http_get: only http:// URLs are supported, got \"{shown}\"")));
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

/// The URL as messages show it: user info and query values replaced by
/// `***` (they may be credentials), the fragment dropped.
fn redacted(url: &str) -> String {
    let url = url.split('#').next().unwrap_or(url);
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) => format!("{key}=***"),
                    None => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

/// The parts `redacted` hides, to scrub them from other text (an echoing server's reply).
fn secrets(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let mut out: Vec<String> = authority.rsplit_once('@').map(|(info, _)| info.to_string()).into_iter().collect();
    out.extend(
        authority
            .rsplit_once('@')
            .and_then(|(info, _)| info.split_once(':'))
            .map(|(_, pw)| pw.to_string()),
    );
    let query = url.split('#').next().unwrap_or(url).split_once('?').map_or("", |(_, q)| q);
    out.extend(query.split('&').filter_map(|p| p.split_once('=')).map(|(_, v)| v.to_string()));
    // Values of one or two characters would garble the message (`x=1` in `HTTP 401`) and hide nothing.
    out.retain(|s| s.len() >= 3);
    // Longest first, so a password inside the whole user info is not left half-hidden.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(redacted("http://host:8080/hello"), "http://host:8080/hello");
        assert_eq!(
            redacted("http://admin:s3cret@host/p?token=abc&x=1&flag#frag"),
            "http://***@host/p?token=***&x=***&flag"
        );
        assert_eq!(redacted("http://host?key=v"), "http://host?key=***");
        let url = "http://admin:s3cret@host/p?token=abc";
        let text = scrub("echo: admin:s3cret token=abc", &secrets(url));
        assert!(
            !text.contains("s3cret") && !text.contains("abc") && !text.contains("admin"),
            "{text}"
        );
    }
}
