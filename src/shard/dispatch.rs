//! The shard mesh, one place: the inbox loop (the shard's main task) and the one handler of
//! what other threads ask of the shard, which also carries out the work the routing layer
//! hands back when the shard is the destination itself.

use std::rc::Rc;

use super::core::Core;
use super::{Shard, YieldNow};
use crate::route::inbox::ShardMsg;

/// Inbox messages handled before the other tasks get a turn.
const BATCH: usize = 512;

/// The shard's main task: drains its inbox in batches, writes out what the batch queued,
/// and leaves the runtime at `Stop`.
pub(super) async fn inbox_loop(shard: Rc<Shard>) {
    let (shared, index) = {
        let core = shard.core.borrow();
        (core.shared.clone(), core.index)
    };
    let inbox = &shared.inboxes[index];
    loop {
        inbox.ready().await;
        let mut handled = 0;
        while let Some(msg) = inbox.try_recv() {
            if let ShardMsg::Stop = msg {
                shard.core.borrow_mut().stop_all();
                return;
            }
            handle(&shard, msg);
            handled += 1;
            if handled == BATCH {
                break;
            }
        }
        shard.core.borrow_mut().end_batch();
        if handled == BATCH {
            YieldNow(false).await;
        }
    }
}

/// `Adopt` goes to the reactor; everything else is `Core::handle`.
fn handle(shard: &Rc<Shard>, msg: ShardMsg) {
    let mut core = shard.core.borrow_mut();
    match msg {
        ShardMsg::Adopt(h) => {
            drop(core);
            super::reactor::adopt(shard, *h);
        }
        msg => core.handle(msg),
    }
}

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
            ShardMsg::Resumed => self.resumed(),
            ShardMsg::History {
                channel,
                since,
                limit,
                to,
            } => self.history_query(&channel, since, limit, to),
            ShardMsg::ToConn { to, frame } => self.to_conn(to, frame),
            ShardMsg::RpcDone { to, frame } => self.rpc_done(to, frame),
            ShardMsg::ProxyDone {
                to,
                purpose,
                verdict,
            } => self.proxy_done(to, purpose, verdict),
            ShardMsg::ConnectDone {
                to,
                refresh,
                cache,
                result,
            } => self.connect_done(to, refresh, cache, result),
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
            ShardMsg::Mute(mute) => self.mutes.add(*mute),
            ShardMsg::Unmute { user, scope, reply } => {
                let had = self.mutes.remove(&user, &scope);
                if let Some(reply) = reply {
                    let _ = reply.send(had);
                }
            }
            ShardMsg::Mutes { reply } => {
                let _ = reply.send(self.mutes.all(crate::auth::unix_now()));
            }
            ShardMsg::Drain { jitter_ms } => self.drain(jitter_ms),
            ShardMsg::Adopt(_) | ShardMsg::Stop => {
                tracing::error!(shard = self.index, "adopt or stop outside the inbox loop")
            }
        }
    }
}
