//! The Redis relay: how instances of one cluster reach each other (docs/architecture.md),
//! through one Redis or a Redis Cluster (`cluster`, `sharded`), and how backends reach the
//! hub through Redis (docs/protocol.md §7).
//!
//! Shards hand what must leave the instance to a bounded queue (`route::relay_queue`): it never
//! blocks a shard, and what does not fit is dropped and counted. The relay runs on the
//! control thread: it publishes the queue in pipelined batches, subscribes to what this
//! instance's subscribers need, and hands what arrives to the shards through their inboxes.
//!
//! Topics (all under `redis_prefix`):
//!
//! - `ch.<channel>` — publications, one topic per channel. The relay subscribes to a
//!   channel's topic while some local shard has subscribers (the interest map), so an
//!   instance receives only what its clients want. The price is subscription churn: a
//!   channel's first local subscriber costs one SUBSCRIBE, its last one an UNSUBSCRIBE after
//!   a grace period (`UNSUBSCRIBE_GRACE`). In a reconnect storm of 50,000 clients the churn is
//!   bounded by the number of distinct channels on the instance, not by clients, and the
//!   grace period absorbs channels that empty and refill. Hashed partitions would make
//!   subscriptions static, but every instance would receive the traffic of every channel in
//!   its partitions: with sparse interest (tables, rooms) most of it wasted.
//! - `cluster` — operations every instance applies to its own connections: direct messages,
//!   `broadcast_all`, disconnects, revocations, server-side subscriptions, presence queries.
//! - `reply.<instance>` — answers to this instance's presence queries.
//! - `egress`, `egress.<instance>` — backends' operations (JSON, §7).
//!
//! Ingress (client `event`s, publications on `ingress` namespaces, session events) is
//! appended to the stream `ingress.v1` from the same queue.

mod batch;
mod cluster;
mod egress;
pub mod history;
mod inbound;
mod link;
mod malformed;
mod members;
mod outbound;
pub mod presence;
mod sharded;
mod traced;

use std::time::Duration;

pub use cluster::{Conn, Target};
pub use link::{run, timed};

/// How long a channel keeps its Redis subscription after its last local subscriber left.
pub const UNSUBSCRIBE_GRACE: Duration = Duration::from_secs(2);
