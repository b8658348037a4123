//! The shard mesh's one handler: what a shard does with each message of its inbox, and
//! with the work the routing layer hands back to it when it is the destination itself.

use super::core::Core;
use crate::route::inbox::ShardMsg;

impl Core {
    /// Carries out one message. `Adopt` and `Stop` need the shard's runtime and are handled
    /// by its inbox loop (`shard::serve`); they never come back from routing.
    pub fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Publish {
                channel,
                frame,
                stamp,
                offset,
            } => {
                self.deliver(&channel, &frame, offset);
                self.stamps.extend(stamp);
            }
            ShardMsg::Sequence {
                channel,
                data,
                from,
                ack,
                stamp,
            } => self.sequence(&channel, &data, from.as_deref(), ack, stamp),
            ShardMsg::Recover { channel, since, to } => self.recover(&channel, since, to),
            ShardMsg::Recovered {
                to,
                channel,
                epoch,
                top,
                recovered,
                frames,
            } => self.recovered(to, &channel, &epoch, top, recovered, frames),
            ShardMsg::History {
                channel,
                since,
                limit,
                to,
            } => self.history_query(&channel, since, limit, to),
            ShardMsg::ToConn { to, frame } => self.to_conn(to, frame),
            ShardMsg::RpcDone { to, frame } => self.rpc_done(to, frame),
            ShardMsg::Direct { user, frame } => self.deliver_to_user(&user, &frame),
            ShardMsg::BroadcastAll { frame } => self.broadcast_all(&frame),
            ShardMsg::Disconnect {
                user,
                reason,
                cause,
                reply,
            } => self.disconnect_user(&user, &reason, &cause, reply),
            ShardMsg::Revoke { rule, cause, reply } => self.revoke(&rule, &cause, reply),
            ShardMsg::Subscription {
                user,
                channel,
                subscribe,
                cause,
                reply,
            } => self.server_subscription(&user, &channel, subscribe, &cause, reply),
            ShardMsg::PresenceQuery { channel, to } => self.presence_query(&channel, to),
            ShardMsg::IngressDone { key, conn, id, ok } => self.ingress_done(key, conn, id, ok),
            ShardMsg::PresencePart { query, users } => self.presence_part(query, users),
            ShardMsg::Drain { jitter_ms } => self.drain(jitter_ms),
            ShardMsg::Adopt(_) | ShardMsg::Stop => {
                tracing::error!(shard = self.index, "adopt or stop outside the inbox loop")
            }
        }
    }
}
