//! Opaque tokens for the `connect` scenario (`--opaque`): written to the hub's token store
//! in Redis before the storm (`--store-redis`), or vouched for by a connect proxy the bench
//! serves itself (`--proxy-listen`), a local backend that answers every token at once.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The record of a token in the store (and the proxy's answer): any channel, a day.
fn identity(user: &str, exp: u64) -> serde_json::Value {
    serde_json::json!({"sub": user, "user": user, "exp": exp, "expires_at": exp,
        "channels": ["*"], "publish": ["*"]})
}

fn day_from_now() -> u64 {
    ringhub::auth::unix_now() + 24 * 3600
}

/// SETs `<prefix><sha256 hex>` for every token, pipelined (RESP over TCP, no client crate).
pub async fn fill_store(redis: SocketAddr, prefix: &str, tokens: &[String]) {
    let mut stream = TcpStream::connect(redis).await.expect("connect to Redis");
    let exp = day_from_now();
    for chunk in tokens.chunks(1000) {
        let mut out = Vec::new();
        for token in chunk {
            let hex: String = ringhub::auth::opaque::digest(token)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let key = format!("{prefix}{hex}");
            let value = identity(token, exp).to_string();
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            for part in [key.as_bytes(), value.as_bytes()] {
                out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
        }
        stream.write_all(&out).await.expect("write to Redis");
        let mut reader = BufReader::new(&mut stream);
        for _ in chunk {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("Redis answers");
            assert_eq!(line, "+OK\r\n", "Redis refused a SET");
        }
    }
}

/// Serves the connect proxy on `addr` until the process ends: every token is a user of its
/// own name. HTTP/1.1 keep-alive, `Content-Length` bodies, as the hub's client sends them.
pub async fn serve_proxy(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind the proxy");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_all(stream));
        }
    });
}

async fn answer_all(stream: TcpStream) {
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let user = asked["token"].as_str().unwrap_or("anonymous");
        let answer = identity(user, day_from_now()).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if reader
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}
