//! WebSocket on the wire: frame heads, the decoder, and the HTTP upgrade.

pub mod decoder;
pub mod frame;
pub mod http;
