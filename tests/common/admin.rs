//! A small HTTP/1.1 client for the admin port (keep-alive, Content-Length bodies), enough
//! to test the server API without hiding what goes over the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The API key the test hubs accept (configured as its SHA-256 digest).
pub const API_KEY: &str = "test-api-key-0123456789";

pub fn digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to the admin port.
pub struct AdminClient {
    reader: BufReader<TcpStream>,
    pub key: Option<String>,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> AdminClient {
        let stream = TcpStream::connect(addr).expect("admin port accepts");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        AdminClient {
            reader: BufReader::new(stream),
            key: Some(API_KEY.into()),
        }
    }

    pub fn without_key(mut self) -> AdminClient {
        self.key = None;
        self
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.call("GET", path, None, &[])
    }

    pub fn post(&mut self, path: &str, body: &Value) -> Response {
        self.call("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    /// Sends one request and reads its answer.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n");
        if let Some(key) = &self.key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        for (n, v) in extra {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        let body = body.unwrap_or(b"");
        if method == "POST" || !body.is_empty() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        self.read_response()
    }

    /// Sends bytes as they are (a request the helpers above cannot shape) and reads one
    /// answer.
    pub fn raw(&mut self, request: &[u8]) -> Response {
        self.reader.get_mut().write_all(request).unwrap();
        self.read_response()
    }

    fn read_response(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        Response {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }
}

/// The value of a metric line (`name{labels} value`) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> f64 {
    find_metric(text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// Like `metric`, None when the series is absent (a labelled counter not yet created).
pub fn find_metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}
