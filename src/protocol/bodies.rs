//! The JSON bodies of the operations backends send, read the same way from the server API
//! and from Redis egress. `data` stays raw: it is relayed byte for byte.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub struct Publish {
    pub channel: String,
    pub data: Box<RawValue>,
}

#[derive(Deserialize)]
pub struct Broadcast {
    pub channels: Vec<String>,
    pub data: Box<RawValue>,
}

#[derive(Deserialize)]
pub struct Send {
    pub user: String,
    pub data: Box<RawValue>,
}

/// `broadcast_all`.
#[derive(Deserialize)]
pub struct Data {
    pub data: Box<RawValue>,
}

#[derive(Deserialize)]
pub struct Disconnect {
    pub user: String,
    #[serde(default)]
    pub reason: Option<String>,
}
