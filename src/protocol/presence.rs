//! Presence lists gathered from several shards or instances, made into one.

use std::collections::HashMap;

use super::{PresenceUser, Status};

/// One entry per user: a user connected to several instances appears once, with the
/// connections added up (and `online` if any part says so).
pub fn merge_presence(users: Vec<PresenceUser>) -> Vec<PresenceUser> {
    let mut at: HashMap<Box<str>, usize> = HashMap::with_capacity(users.len());
    let mut out: Vec<PresenceUser> = Vec::with_capacity(users.len());
    for u in users {
        match at.get(&u.user) {
            Some(&i) => {
                out[i].conns += u.conns;
                if u.status == Status::Online {
                    out[i].status = Status::Online;
                }
            }
            None => {
                at.insert(u.user.clone(), out.len());
                out.push(u);
            }
        }
    }
    out
}
