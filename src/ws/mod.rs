//! WebSocket on the wire: frame heads, the decoder, the HTTP upgrade and its `Origin` check,
//! and permessage-deflate (its negotiation in `extensions`, its data in `deflate`).

pub mod decoder;
pub mod deflate;
pub mod extensions;
pub mod frame;
pub mod http;
pub mod origin;
