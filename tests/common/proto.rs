//! A client of the binary protocol (`Sec-WebSocket-Protocol: ringhub.v1.proto`), speaking
//! the prost types generated from proto/ over a real tungstenite WebSocket.

use std::collections::VecDeque;
use std::net::SocketAddr;

use prost::Message as _;
use ringhub::protocol::proto::pb::{self, client_frame::Request, hub_frame::Frame};
use tungstenite::Message;

use super::{open, token, Client};

pub const PROTO: &str = "ringhub.v1.proto";

pub struct ProtoClient {
    pub c: Client,
    /// Frames that arrived while `request` waited for its reply.
    early: VecDeque<pb::HubFrame>,
}

/// Opens `/ws` offering the proto subprotocol, with more headers if given.
pub fn open_proto(addr: SocketAddr, headers: &[(&str, &str)]) -> ProtoClient {
    let mut all = vec![("sec-websocket-protocol", PROTO)];
    all.extend_from_slice(headers);
    let c = open(addr, "/ws", &all).expect("upgrade");
    ProtoClient {
        c,
        early: VecDeque::new(),
    }
}

/// Connects `user` (header token) over proto and returns the client and its welcome.
pub fn connect_proto(addr: SocketAddr, user: &str) -> (ProtoClient, pb::Welcome) {
    let auth = format!("Bearer {}", token(user));
    let mut p = open_proto(addr, &[("authorization", &auth)]);
    match p.recv().frame {
        Some(Frame::Welcome(w)) => (p, w),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// A `ClientFrame` with neither correlation id nor traceparent.
pub fn frame(id: Option<u64>, request: Request) -> pb::ClientFrame {
    pb::ClientFrame {
        id,
        correlation_id: String::new(),
        traceparent: String::new(),
        request: Some(request),
    }
}

impl ProtoClient {
    pub fn send(&mut self, id: Option<u64>, request: Request) {
        self.send_frame(frame(id, request));
    }

    pub fn send_frame(&mut self, frame: pb::ClientFrame) {
        self.send_bytes(frame.encode_to_vec());
    }

    pub fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.c.ws.send(Message::binary(bytes)).expect("send");
    }

    /// The next hub frame (pings are answered by tungstenite and skipped).
    pub fn recv(&mut self) -> pb::HubFrame {
        match self.early.pop_front() {
            Some(f) => f,
            None => self.read(),
        }
    }

    /// The next hub frame from the socket.
    fn read(&mut self) -> pb::HubFrame {
        loop {
            match self.c.ws.read() {
                Ok(Message::Binary(b)) => return pb::HubFrame::decode(&b[..]).expect("a HubFrame"),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("expected a binary frame, got {other:?}"),
                Err(e) => panic!("expected a binary frame, got error {e}"),
            }
        }
    }

    /// Sends a request with `id` and returns the reply with that id; frames that came
    /// before it are kept for `recv`.
    pub fn request(&mut self, id: u64, request: Request) -> Frame {
        self.request_frame(frame(Some(id), request))
    }

    /// [`ProtoClient::request`] of a whole `ClientFrame` (its `id` must be set).
    pub fn request_frame(&mut self, frame: pb::ClientFrame) -> Frame {
        let id = frame.id;
        self.send_frame(frame);
        loop {
            let f = self.read();
            if f.id == id {
                return f.frame.expect("a frame");
            }
            self.early.push_back(f);
        }
    }

    pub fn subscribe(&mut self, channel: &str, since: Option<pb::Since>) -> pb::Subscribed {
        match self.subscribe_delta(channel, since, "") {
            Frame::Subscribed(s) => s,
            other => panic!("expected subscribed, got {other:?}"),
        }
    }

    /// A subscribe with `delta` ("fossil", or empty for none): the reply.
    pub fn subscribe_delta(
        &mut self,
        channel: &str,
        since: Option<pb::Since>,
        delta: &str,
    ) -> Frame {
        let sub = pb::Subscribe {
            channel: channel.into(),
            since,
            delta: delta.into(),
        };
        self.request(900_001, Request::Subscribe(sub))
    }

    pub fn publish(&mut self, id: u64, channel: &str, data: &[u8]) -> Frame {
        let p = pb::Publish {
            channel: channel.into(),
            data: data.to_vec(),
        };
        self.request(id, Request::Publish(p))
    }

    /// The next `message` frame.
    pub fn recv_message(&mut self) -> pb::Message {
        match self.recv().frame {
            Some(Frame::Message(m)) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}
