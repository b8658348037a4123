//! A real HTTP/1.1 backend on a loopback port, for `rpc`, webhooks and OTLP traces: it reads each
//! request (keep-alive, `Content-Length` bodies), keeps its JSON, and answers what the
//! test's handler says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

/// What the backend answers to one request.
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// Holds a handler until the test opens it: an answer that comes exactly when the test
/// says, instead of after a delay that is hoped to be long enough.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (open, cv) = &*self.0;
        let _open = cv.wait_while(open.lock().unwrap(), |o| !*o).unwrap();
    }

    pub fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

pub struct Backend {
    pub addr: SocketAddr,
    /// Every request body received, in order.
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// Every request's headers (names in lower case) and raw body, in order.
    pub raw: Arc<Mutex<Vec<Raw>>>,
    /// Answers written (or tried: the hub may have hung up).
    answered: Arc<AtomicUsize>,
}

/// One request as it came.
#[derive(Clone, Debug)]
pub struct Raw {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Backend {
    pub fn start(handler: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (log, raws, count) = (seen.clone(), raw.clone(), answered.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log, raws, count) =
                    (handler.clone(), log.clone(), raws.clone(), count.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log, &raws, &count));
            }
        });
        Backend {
            addr,
            seen,
            raw,
            answered,
        }
    }

    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://{}/rpc", self.addr)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    pub fn raw_requests(&self) -> Vec<Raw> {
        self.raw.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    handler: &dyn Fn(&Value) -> Answer,
    log: &Mutex<Vec<Value>>,
    raws: &Mutex<Vec<Raw>>,
    answered: &AtomicUsize,
) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut headers = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // rpc calls go to `/rpc`, webhooks to the test's own path.
        assert!(
            line.starts_with("POST /") && line.ends_with("HTTP/1.1\r\n"),
            "request line {line:?}"
        );
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
                headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // The hub posts JSON, but for its traces (an OTLP receiver keeps the raw bytes).
        let protobuf = headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/x-protobuf");
        let request: Value = match protobuf {
            true => Value::Null,
            false => serde_json::from_slice(&body).expect("the hub posts JSON"),
        };
        log.lock().unwrap().push(request.clone());
        raws.lock().unwrap().push(Raw { headers, body });
        let answer = handler(&request);
        std::thread::sleep(answer.delay);
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        let written = out.write_all(response.as_bytes());
        answered.fetch_add(1, Ordering::SeqCst);
        if written.is_err() {
            return;
        }
    }
}
