//! A shard's state in owned parts. Each part keeps its fields to itself and is changed
//! only through its methods (each tested here, without sockets); `Core` composes them and
//! decides what a change means for connections and other shards.
//!
//! - [`Subscriptions`]: channel -> this shard's subscribed connections.
//! - [`Users`]: user -> this shard's connections of the user, their rate limit, status.
//! - [`Presence`]: channel -> present users, and presence queries waiting for parts.
//! - [`Logs`]: the history of the channels this shard sequences.
//! - [`Streams`]: where each channel with history stands here, and the gaps being closed.
//! - [`Timers`]: the timing wheel and the ticker that drives it.
//! - [`Tokens`]: tokens found in the token store, cached for `token_cache_ttl`.
//! - [`Deltas`]: the channels some subscribers take as deltas, and who is in step.

mod deltas;
mod logs;
mod presence;
mod streams;
mod subscriptions;
mod timers;
mod tokens;
mod users;

pub use deltas::{Deltas, Form};
pub use logs::{Logs, Recovery};
pub use presence::{Pending, Presence};
pub use streams::{Admit, Answer, Ask, Joined, Resolved, Streams};
pub use subscriptions::Subscriptions;
pub use timers::{Timer, TimerKind, Timers};
pub use tokens::Tokens;
pub use users::{Admission, Users};
