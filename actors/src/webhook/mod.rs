//! A webhook, as Eliot calls one: an `http://` URL (`WebhookUrl`), a body signed with
//! HMAC-SHA256 (`sign`), and one POST answered by a status (`post`). Nothing of the crate:
//! the notifier (`notify/`) decides what is sent, when, and what a failure means.
//!
//! The POST is HTTP/1.1 over TCP, written here rather than taken from a client library:
//! it needs one request shape, one bound on time and one on the answer read, and no
//! redirects (a webhook that answers 3xx failed).

use std::time::Duration;

use ring::hmac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of the answer read at most: its status line is all that counts.
const MAX_ANSWER: usize = 16 * 1024;

/// A webhook's address: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl WebhookUrl {
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(
                    "https is not supported: give an http:// URL (a relay on the same host can add TLS)"
                        .into(),
                )
            }
            _ => return Err(format!("`{url}`: expected http://host[:port][/path]")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{url}`: the port is not a number from 1 to 65535"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
        let path_ok = path.bytes().all(|b| b.is_ascii_graphic());
        if !host_ok || !path_ok || port == 0 || authority.contains('@') {
            return Err(format!("`{url}`: expected http://host[:port][/path]"));
        }
        Ok(WebhookUrl {
            host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `<timestamp>.<body>` under `secret`. The receiver
/// computes the same from the `X-Eliot-Timestamp` header and the body, and compares.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// POSTs `body` (JSON) to `url` with `headers`, and answers the status, within `timeout`
/// from connecting to the status line.
pub async fn post(
    url: &WebhookUrl,
    body: &[u8],
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<u16, String> {
    match tokio::time::timeout(timeout, exchange(url, body, headers)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn exchange(
    url: &WebhookUrl,
    body: &[u8],
    headers: &[(&str, String)],
) -> Result<u16, String> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connecting to {}:{}: {e}", url.host, url.port))?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: eliot\r\n",
        url.path,
        url.host,
        url.port,
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err("the connection closed before an answer".into());
        }
        answer.extend_from_slice(&chunk[..n]);
        if answer.len() > MAX_ANSWER {
            return Err("no status line in the answer's first 16 KiB".into());
        }
    }
    status_of(&answer)
}

/// The status of `HTTP/1.x NNN ...`.
fn status_of(answer: &[u8]) -> Result<u16, String> {
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(version), Some(status)) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err(format!("not an HTTP answer: {:?}", line.trim_end())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[test]
    fn urls_are_http_with_a_host() {
        let url = WebhookUrl::parse("http://127.0.0.1:9000/hooks/eliot").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 9000, "/hooks/eliot")
        );
        let bare = WebhookUrl::parse("http://alerts.example").unwrap();
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        let v6 = WebhookUrl::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
        for bad in [
            "https://x/",
            "ftp://x/",
            "x:80",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://user:pw@h/",
            "http://h/a b",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231's test case 2: key "Jefe", data "what do ya want for nothing?".
        let signed = sign(b"Jefe", 0, b"").len();
        assert_eq!(signed, "sha256=".len() + 64);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The same construction over "<ts>.<body>".
        let ours = sign(b"Jefe", 17, b"{}");
        let theirs = hmac::sign(&key, b"17.{}");
        let hex: String = theirs.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ours, format!("sha256={hex}"));
    }

    #[test]
    fn status_lines_are_read_and_others_refused() {
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n"), Ok(204));
        assert_eq!(status_of(b"HTTP/1.0 500 Oops\r\n"), Ok(500));
        assert!(status_of(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[tokio::test]
    async fn a_post_reaches_a_real_socket_with_its_headers_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut reader = tokio::io::BufReader::new(socket);
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_owned());
            }
            let mut body = vec![0u8; 7];
            reader.read_exact(&mut body).await.unwrap();
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            (head, body)
        });
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/in")).unwrap();
        let headers = [("X-Eliot-Event", "5".to_owned())];
        let status = post(&url, b"{\"a\":1}", &headers, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 202);
        let (head, body) = server.await.unwrap();
        assert_eq!(head[0], "POST /in HTTP/1.1");
        assert!(head.contains(&"X-Eliot-Event: 5".to_owned()), "{head:?}");
        assert!(head.contains(&"Content-Length: 7".to_owned()), "{head:?}");
        assert_eq!(body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        });
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let failed = post(&url, b"{}", &[], Duration::from_millis(200)).await;
        assert!(failed.unwrap_err().contains("no answer within"));
    }
}
