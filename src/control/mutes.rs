//! `/api/mute` (docs/api.md): POST `{user, channel | namespace, until?, reason?}` mutes a
//! user, DELETE `{user, channel | namespace}` lifts it, GET (`?user=`) lists the mutes in
//! force. Stored in Redis when configured, so they hold across instances and restarts.

use std::sync::Arc;

use serde_json::json;

use super::admin::Admin;
use super::api::Answer;
use crate::mutes::Mute;
use crate::route::ops::{self, Scope};

fn bad(message: &str) -> Answer {
    Answer::error(400, "bad_request", message)
}

const SHAPE: &str = r#"expected {"user":"..","channel":"<name or prefix*>"} or {"user":"..","namespace":".."}, with "until":<unix seconds> and "reason" optional"#;

pub async fn mute(admin: &Admin, mute: Mute, cause: Option<Arc<str>>) -> Result<Answer, Answer> {
    let now = crate::auth::unix_now();
    if !mute.valid() {
        return Err(bad(SHAPE));
    }
    if mute.until.is_some_and(|until| until <= now) {
        return Err(bad("until is in the past"));
    }
    let persisted = persist(admin, &mute.key(), Some(&mute)).await;
    ops::mute(&admin.shared, mute, &cause, Scope::Cluster);
    Ok(Answer::ok(json!({ "persisted": persisted })))
}

pub async fn unmute(admin: &Admin, mute: Mute, cause: Option<Arc<str>>) -> Result<Answer, Answer> {
    if !mute.valid() {
        return Err(bad(SHAPE));
    }
    let persisted = persist(admin, &mute.key(), None).await;
    let shared = &admin.shared;
    let lifted = ops::unmute(shared, &mute.user, &mute.scope(), &cause, Scope::Cluster).await?;
    Ok(Answer::ok(
        json!({ "lifted": lifted, "persisted": persisted }),
    ))
}

pub async fn list(admin: &Admin, query: &str) -> Result<Answer, Answer> {
    let user = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("user="))
        .map(|u| {
            percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned()
        });
    let mut mutes = ops::mutes(&admin.shared).await?;
    if let Some(user) = user {
        mutes.retain(|m| *m.user == *user);
    }
    mutes.sort_by(|a, b| (&a.user, a.scope()).cmp(&(&b.user, b.scope())));
    Ok(Answer::ok(json!({ "mutes": mutes })))
}

/// Writes (or deletes) the mute in Redis; false when there is no Redis or it failed.
async fn persist(admin: &Admin, key: &str, mute: Option<&Mute>) -> bool {
    let Some(store) = &admin.store else {
        return false;
    };
    match store.save_mute(key, mute).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a mute in Redis; it holds on this instance until it restarts");
            false
        }
    }
}
