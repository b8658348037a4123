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
                // The counts of other instances come from Redis: never trust them to fit.
                out[i].conns = out[i].conns.saturating_add(u.conns);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(conns: u32, status: Status) -> PresenceUser {
        PresenceUser {
            user: "u".into(),
            conns,
            status,
            info: "{}".into(),
        }
    }

    #[test]
    fn parts_add_up_and_online_wins_without_overflowing() {
        let merged = merge_presence(vec![user(u32::MAX, Status::Away), user(2, Status::Online)]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].conns, u32::MAX);
        assert_eq!(merged[0].status, Status::Online);
    }
}
