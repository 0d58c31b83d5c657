//! A webhook receiver the tests run: a real HTTP/1.1 server on a loopback port, on a
//! thread of its own, keeping every request it read (headers and body) and answering each
//! with the status its script says (200 once the script is spent).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use ring::hmac;

/// One request the receiver read, and the status it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
    pub raw_body: Vec<u8>,
    pub status: u16,
}

impl Received {
    /// Whether `X-Eliot-Signature` is the HMAC-SHA256 of "<timestamp>.<body>" under
    /// `secret`, computed here as a receiver would.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(timestamp) = self.headers.get("x-eliot-timestamp") else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(&self.raw_body);
        let tag = hmac::sign(&key, &signed);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        self.headers.get("x-eliot-signature") == Some(&format!("sha256={hex}"))
    }

    pub fn event_id(&self) -> i64 {
        self.headers
            .get("x-eliot-event-id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers the first requests with `script`'s statuses, then 200.
    pub fn start(script: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = script.next().unwrap_or(200);
                if let Some(request) = serve(stream, status) {
                    kept.lock().unwrap().push(request);
                }
            }
        });
        Receiver { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/eliot", self.addr)
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests answered 2xx: the notifications delivered.
    pub fn delivered(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

/// Reads one request, answers `status`, and returns what it read.
fn serve(stream: std::net::TcpStream, status: u16) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut raw_body = vec![0; length];
    reader.read_exact(&mut raw_body).ok()?;
    let mut stream = reader.into_inner();
    let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(answer.as_bytes()).ok()?;
    assert!(
        request_line.starts_with("POST /hooks/eliot HTTP/1.1"),
        "{request_line}"
    );
    Some(Received {
        body: serde_json::from_slice(&raw_body).unwrap_or_default(),
        headers,
        raw_body,
        status,
    })
}
