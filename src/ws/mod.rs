//! WebSocket on the wire: frame heads, the decoder, the HTTP upgrade and its `Origin` check.

pub mod decoder;
pub mod frame;
pub mod http;
pub mod origin;
